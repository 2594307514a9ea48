//! The descriptors a target holds, from `/proc/PID/fd`: how many, and
//! which sockets (by inode, as the kernel's socket dump names them).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use super::Stat;

/// The inodes of the sockets `pid` holds open (`socket:[N]` in its fds).
pub fn socket_inodes(pid: i32) -> BTreeSet<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| {
        let link = fs::read_link(e.ok()?.path()).ok()?;
        socket_inode(&link.to_string_lossy())
    })
    .collect()
}

/// The inode named by a descriptor's link text, `socket:[N]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every process of the machine that holds the socket `inode` (as far as
/// this user may look), for naming who holds a port. From inside the
/// harness's user namespace, the look is taken from outside it.
pub fn holders_anywhere(inode: u64) -> Vec<i32> {
    super::outside::holders(inode).unwrap_or_else(|| holders_here(inode))
}

/// [`holders_anywhere`] as this process itself may see them.
pub(super) fn holders_here(inode: u64) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| socket_inodes(pid).contains(&inode))
        .collect()
}

/// Open descriptors across a set of processes (zombies hold none).
pub fn descriptors(procs: &[Stat]) -> usize {
    descriptors_by_process(procs).values().sum()
}

/// Open descriptors of each process of a set (zombies hold none).
pub fn descriptors_by_process(procs: &[Stat]) -> BTreeMap<i32, usize> {
    procs
        .iter()
        .filter(|s| !s.zombie)
        .filter_map(|s| {
            let n = fs::read_dir(format!("/proc/{}/fd", s.pid)).ok()?.count();
            Some((s.pid, n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_link_names_a_socket_inode() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }
}
