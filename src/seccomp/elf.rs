//! Whether an ELF file is statically linked. std only: `build.rs` includes this file too
//! (`#[path]`), to check the shim it embeds with the same logic lxcprov applies to a shim
//! given with `--init-shim`.

/// Whether a 64-bit little-endian ELF file needs no program interpreter (has no
/// `PT_INTERP` program header), that is, is statically linked.
pub fn is_static_elf(bytes: &[u8]) -> Result<bool, &'static str> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF file");
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let mut phoff = [0u8; 8];
    phoff.copy_from_slice(&bytes[32..40]);
    let phoff = usize::try_from(u64::from_le_bytes(phoff)).map_err(|_| "bad program header offset")?;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff.checked_add(i * phentsize).ok_or("bad program header offset")?;
        if o.checked_add(4).is_none_or(|end| end > bytes.len()) {
            return Err("truncated program headers");
        }
        if u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) == 3 {
            return Ok(false); // PT_INTERP
        }
    }
    Ok(true)
}
