//! Mutated profiles: the built-in profiles and [`FULL_PROFILE`], mutated byte by byte and
//! token by token (insertions of hostile tokens, deletions, replaced bytes, duplicated,
//! swapped and re-indented lines, truncation, splices).

use super::hostile::HOSTILE;
use super::profiles::FULL_PROFILE;
use lxcprov::profile;
use proptest::prelude::*;
use proptest::sample::{select, Index};

#[derive(Clone, Debug)]
pub enum Mutation {
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Replace(Index, u8),
    DupLine(Index),
    SwapLines(Index, Index),
    Indent(Index, i8),
    Truncate(Index),
    Splice(Index, Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        4 => select(HOSTILE).prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<u8>(), 1..6),
        1 => (select(HOSTILE), 1usize..2000).prop_map(|(s, n)| s.repeat(n).into_bytes()),
        1 => select(vec!["\n  - x", "\n  x: 1", ": ", "\n- ", "\n---\n", " &a", " *a", " !!str", " !!int", "\t"])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop_oneof![
        4 => (any::<Index>(), token).prop_map(|(i, t)| Mutation::Insert(i, t)),
        2 => (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        1 => any::<Index>().prop_map(Mutation::DupLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (any::<Index>(), -4i8..5).prop_map(|(i, d)| Mutation::Indent(i, d)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>(), 1usize..200).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

pub fn apply(text: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = text.to_vec();
    for m in muts {
        let at = |i: &Index, b: &Vec<u8>| if b.is_empty() { 0 } else { i.index(b.len() + 1) };
        match m {
            Mutation::Insert(i, t) => {
                let p = at(i, &b);
                b.splice(p..p, t.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let p = at(i, &b);
                let e = (p + n).min(b.len());
                b.drain(p..e);
            }
            Mutation::Replace(i, x) => {
                if !b.is_empty() {
                    let p = i.index(b.len());
                    b[p] = *x;
                }
            }
            Mutation::Truncate(i) => {
                let p = at(i, &b);
                b.truncate(p);
            }
            Mutation::Splice(a, c, n) => {
                if !b.is_empty() {
                    let from = a.index(b.len());
                    let piece: Vec<u8> = b[from..(from + n).min(b.len())].to_vec();
                    let to = at(c, &b);
                    b.splice(to..to, piece);
                }
            }
            Mutation::DupLine(_) | Mutation::SwapLines(..) | Mutation::Indent(..) => {
                let mut lines: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                match m {
                    Mutation::DupLine(i) => {
                        let l = lines[i.index(n)].clone();
                        lines.insert(i.index(n), l);
                    }
                    Mutation::SwapLines(x, y) => lines.swap(x.index(n), y.index(n)),
                    Mutation::Indent(i, d) => {
                        let l = &mut lines[i.index(n)];
                        if *d > 0 {
                            l.splice(0..0, std::iter::repeat_n(b' ', *d as usize));
                        } else {
                            let k = l.iter().take((-*d) as usize).take_while(|&&c| c == b' ').count();
                            l.drain(..k);
                        }
                    }
                    _ => unreachable!(),
                }
                b = lines.join(&b'\n');
            }
        }
    }
    b
}

#[derive(Clone, Debug)]
pub struct Mutated {
    pub base: &'static str,
    pub muts: Vec<Mutation>,
}

pub fn mutated_doc() -> impl Strategy<Value = Mutated> {
    let bases: Vec<&'static str> = profile::BUILTIN.iter().map(|(_, t)| *t).chain([FULL_PROFILE]).collect();
    (select(bases), prop::collection::vec(mutation(), 1..8)).prop_map(|(base, muts)| Mutated { base, muts })
}
