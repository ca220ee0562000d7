//! `disk`: the container's disk quota (`resources.disk`) is in force: its layer's file
//! system of its own is mounted, with its size and what the container has written.

use super::{Check, Ctx};
use std::os::unix::fs::MetadataExt;

pub(super) fn disk(cx: &Ctx) -> Check {
    const ID: &str = "disk";
    let Some(rootfs) = &cx.facts.domain.rootfs else {
        return Check::skip(ID, "the domain names no root filesystem", vec![]);
    };
    let (Some(pool), Some(name)) = (rootfs.parent(), rootfs.file_name()) else {
        return Check::skip(ID, "no disk quota", vec![]);
    };
    let pool = cx.host.root.join(pool.strip_prefix("/").unwrap_or(pool));
    // An overlay layer's disk (`LAYER/disk.img` on `LAYER/disk`), or a copy's
    // (`POOL/.lxcprov/disks/NAME.img` on `POOL/NAME`).
    let layer = pool.join(".lxcprov/layers").join(name);
    let mut copy_img = pool.join(".lxcprov/disks").join(name).into_os_string();
    copy_img.push(".img");
    let (img, dir, parent) = if layer.join("disk.img").exists() {
        (layer.join("disk.img"), layer.join("disk"), layer.clone())
    } else {
        (std::path::PathBuf::from(copy_img), pool.join(name), pool.clone())
    };
    let Ok(im) = std::fs::symlink_metadata(&img) else {
        return Check::skip(ID, "no disk quota (resources.disk): its writes are bounded by the pool only", vec![]);
    };
    let ev = vec![format!("{}: {} bytes, {} allocated", img.display(), im.len(), im.blocks() * 512)];
    let mounted = match (std::fs::metadata(&dir), std::fs::metadata(&parent)) {
        (Ok(d), Ok(l)) => d.dev() != l.dev(),
        _ => false,
    };
    if !mounted {
        return Check::fail(ID, format!("the quota file system {} is not mounted", dir.display()), ev);
    }
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return Check::fail(ID, "the layer's path holds a NUL byte", ev);
    };
    // SAFETY: a zeroed statvfs is a valid out-parameter; c is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Check::fail(ID, format!("cannot read {}: {}", dir.display(), std::io::Error::last_os_error()), ev);
    }
    let (total, free) = (st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize);
    let used = total.saturating_sub(free);
    Check::pass(
        ID,
        format!("quota {} MiB, {} MiB written ({}%)", im.len() >> 20, used >> 20, used * 100 / total.max(1)),
        ev,
    )
}
