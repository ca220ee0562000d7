//! One worker pool for lab-wide work: at most `jobs` threads take items from one queue.
//! Each worker runs with state of its own (a libvirt connection, opened once per worker, not
//! once per item), and a worker's failure to set that state up is reported, not lost.

use std::sync::Mutex;

/// Runs `worker` on up to `jobs` threads (at least one, never more than there are items).
/// Each call gets `next`, which hands out the items one at a time until none is left, and
/// returns the worker's own failure (its set-up), if any; those failures are returned.
pub fn run<'i, T: Sync, E: Send>(
    items: &'i [T],
    jobs: usize,
    worker: impl Fn(&dyn Fn() -> Option<&'i T>) -> Result<(), E> + Sync,
) -> Vec<E> {
    let queue = Mutex::new(items.iter());
    let next = || queue.lock().unwrap_or_else(|p| p.into_inner()).next();
    let errors = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                if let Err(e) = worker(&next) {
                    errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                }
            });
        }
    });
    errors.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_is_taken_once_by_at_most_jobs_workers_and_set_up_failures_come_back() {
        let items: Vec<u32> = (0..100).collect();
        let seen = Mutex::new(vec![]);
        let workers = AtomicUsize::new(0);
        let errors = run(&items, 4, |next| {
            workers.fetch_add(1, Ordering::SeqCst);
            while let Some(i) = next() {
                seen.lock().unwrap().push(*i);
            }
            Err::<(), _>("no connection")
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, items);
        assert_eq!(workers.load(Ordering::SeqCst), 4);
        assert_eq!(errors, vec!["no connection"; 4]);
        assert!(run(&[] as &[u32], 8, |_| Ok::<(), ()>(())).is_empty());
    }
}
