//! A started target's view of the files: a mount namespace of its own in
//! which chosen paths are hidden (a directory shows empty and read-only, a
//! file shows empty), and a folder inside a hidden directory is shown
//! again, where the target's own files are. What a grader runs from one
//! submission then cannot read the other submissions' folders, nor the
//! assignment profile with its hidden checks; the system, the target's
//! scratch directory and its own folder stay as they are.
//!
//! The namespace is made in the child between fork and exec, with the
//! capabilities the harness holds: root's ([`Isolation::Namespace`]), or
//! those of the user namespace the harness entered at start-up
//! ([`Isolation::UserNamespace`]), which the target gives up as it execs.
//! Where the machine grants no namespace ([`Isolation::Shared`]), nothing
//! can be hidden: [`can_confine`] says so before a run, and a started
//! target says whether it is confined.
//!
//! Every path is made a C string, and the plan of mounts made, before the
//! fork: the child only makes system calls.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::kernel::netns::{self, Isolation};
use crate::kernel::trial;

/// What a started target is kept from seeing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confinement {
    /// A folder to show even where it lies in a hidden directory: the
    /// target's own (a submission's folder).
    pub show: PathBuf,
    /// Directories and files to hide: the other submissions' folders (or
    /// the folder of all of them), the assignment profile, the reports.
    pub hide: Vec<PathBuf>,
}

/// Whether targets started now can be confined: the run has a namespace
/// per check, and the machine lets the harness make a mount namespace and
/// mount in it (tried once, in a child process).
pub fn can_confine() -> bool {
    static MOUNTS: OnceLock<bool> = OnceLock::new();
    netns::in_effect() != Isolation::Shared && *MOUNTS.get_or_init(|| can_mount().is_ok())
}

/// One step of a confinement, in the order the child takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Opens a folder to show, before anything is mounted over it: the
    /// `n`th opened is shown by [`Step::Show`] `n`.
    Open(PathBuf),
    /// Mounts an empty tmpfs over a directory.
    EmptyDir(PathBuf),
    /// Mounts `/dev/null` over a file.
    EmptyFile(PathBuf),
    /// Makes a directory in a tmpfs mounted over a hidden one, where a
    /// shown folder is mounted.
    MakeDir(PathBuf),
    /// Mounts the `n`th folder opened at its own path.
    Show(usize, PathBuf),
    /// Makes a tmpfs mounted over a directory read-only.
    ReadOnly(PathBuf),
    /// Goes to the working directory again, through the new mounts.
    Enter(PathBuf),
}

/// Why a confinement cannot be made as asked.
#[derive(Debug, PartialEq, Eq)]
pub struct Contradiction(pub String);

/// The steps that hide `hide` (each with whether it is a directory) and
/// show `show` again, each an absolute path without `..`, for a target
/// that runs in `cwd`. A path hidden inside a hidden directory is hidden
/// already; one inside a shown folder is hidden in it after it is shown.
pub fn plan(
    hide: &[(PathBuf, bool)],
    show: &[PathBuf],
    cwd: &Path,
) -> Result<Vec<Step>, Contradiction> {
    let inside = |p: &Path, dir: &Path| p.starts_with(dir);
    if let Some((h, _)) = hide.iter().find(|(h, _)| show.contains(h)) {
        return Err(Contradiction(format!(
            "{} is both hidden and shown",
            h.display()
        )));
    }
    // Whether `p` is hidden by the hidden directory `d` around it: unless
    // a folder shown between them shows it again.
    let hidden_by = |p: &Path, d: &Path| {
        inside(p, d) && !show.iter().any(|s| inside(p, s) && inside(s, d) && s != d)
    };
    let hidden_dirs: Vec<&PathBuf> = hide.iter().filter(|(_, d)| *d).map(|(p, _)| p).collect();
    let covered = |p: &Path| {
        hidden_dirs
            .iter()
            .any(|d| p != d.as_path() && hidden_by(p, d))
    };
    let in_shown = |p: &Path| show.iter().any(|s| inside(p, s));
    let mut first: Vec<&(PathBuf, bool)> = hide
        .iter()
        .filter(|(p, _)| !covered(p) && !in_shown(p))
        .collect();
    first.sort();
    first.dedup();
    let mut later: Vec<&(PathBuf, bool)> = hide
        .iter()
        .filter(|(p, _)| !covered(p) && in_shown(p))
        .collect();
    later.sort();
    later.dedup();
    // The folders to show are those a hidden directory covers.
    let mut shown: Vec<(&PathBuf, &PathBuf)> = show
        .iter()
        .filter_map(|s| {
            let around = first.iter().find(|(d, dir)| *dir && inside(s, d))?;
            Some((s, &around.0))
        })
        .collect();
    shown.sort();
    shown.dedup();
    if hide.iter().any(|(h, _)| hidden_by(cwd, h)) {
        return Err(Contradiction(format!(
            "the working directory {} would be hidden",
            cwd.display()
        )));
    }
    let mut steps: Vec<Step> = shown
        .iter()
        .map(|(s, _)| Step::Open(s.to_path_buf()))
        .collect();
    for (p, dir) in &first {
        steps.push(match dir {
            true => Step::EmptyDir(p.clone()),
            false => Step::EmptyFile(p.clone()),
        });
    }
    let mut made: Vec<PathBuf> = Vec::new();
    for (n, (s, around)) in shown.iter().enumerate() {
        let mut at = around.to_path_buf();
        for part in s
            .strip_prefix(around)
            .into_iter()
            .flat_map(Path::components)
        {
            at.push(part);
            if !made.contains(&at) {
                made.push(at.clone());
                steps.push(Step::MakeDir(at.clone()));
            }
        }
        steps.push(Step::Show(n, s.to_path_buf()));
    }
    for (p, dir) in &first {
        if *dir {
            steps.push(Step::ReadOnly(p.clone()));
        }
    }
    for (p, dir) in &later {
        steps.push(match dir {
            true => Step::EmptyDir(p.clone()),
            false => Step::EmptyFile(p.clone()),
        });
    }
    for (p, dir) in &later {
        if *dir {
            steps.push(Step::ReadOnly(p.clone()));
        }
    }
    steps.push(Step::Enter(cwd.to_path_buf()));
    Ok(steps)
}

/// A confinement ready to apply in a child before it execs: the plan, its
/// paths as C strings.
#[derive(Debug)]
pub struct Prepared {
    steps: Vec<(Step, CString)>,
}

/// Descriptors of the folders opened to show: at most this many.
const MOST_SHOWN: usize = 8;

impl Prepared {
    /// The steps that confine a target started in `cwd` as `confinement`
    /// asks, with `also_show` (its scratch directory) visible too. Paths
    /// that do not exist are not hidden: there is nothing to hide.
    pub fn new(
        confinement: &Confinement,
        also_show: &[&Path],
        cwd: &Path,
    ) -> Result<Prepared, Contradiction> {
        let real = |p: &Path| std::fs::canonicalize(p).ok();
        let hide: Vec<(PathBuf, bool)> = confinement
            .hide
            .iter()
            .filter_map(|p| real(p))
            .map(|p| {
                let dir = p.is_dir();
                (p, dir)
            })
            .collect();
        let show: Vec<PathBuf> = std::iter::once(confinement.show.as_path())
            .chain(also_show.iter().copied())
            .map(|p| {
                real(p).ok_or_else(|| {
                    Contradiction(format!("the folder to show {} does not exist", p.display()))
                })
            })
            .collect::<Result<_, _>>()?;
        let cwd = real(cwd).unwrap_or_else(|| cwd.to_path_buf());
        let steps = plan(&hide, &show, &cwd)?;
        let opened = steps.iter().filter(|s| matches!(s, Step::Open(_))).count();
        if opened > MOST_SHOWN {
            return Err(Contradiction(format!(
                "at most {MOST_SHOWN} folders can be shown in hidden directories"
            )));
        }
        let steps = steps
            .into_iter()
            .map(|step| {
                let path = match &step {
                    Step::Open(p)
                    | Step::EmptyDir(p)
                    | Step::EmptyFile(p)
                    | Step::MakeDir(p)
                    | Step::Show(_, p)
                    | Step::ReadOnly(p)
                    | Step::Enter(p) => p,
                };
                let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
                    Contradiction(format!("{} has a NUL byte in its name", path.display()))
                })?;
                Ok((step, c))
            })
            .collect::<Result<_, _>>()?;
        Ok(Prepared { steps })
    }

    /// Makes the calling process's mount namespace and takes the steps.
    ///
    /// Only for a child between fork and exec: it makes system calls alone
    /// (no allocation, no lock), and changes what the process sees of the
    /// files for good.
    pub fn apply(&self) -> io::Result<()> {
        let mut fds = [-1; MOST_SHOWN];
        // SAFETY: system calls on C strings prepared before the fork and on
        // descriptors this function opened.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Nothing mounted here reaches the harness's namespace.
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            let mut next = 0;
            for (step, path) in &self.steps {
                match step {
                    Step::Open(_) => {
                        // Opened inside the new namespace: a mount is made
                        // only from a path of the caller's namespace.
                        let fd = libc::open(
                            path.as_ptr(),
                            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                        );
                        if fd < 0 {
                            return Err(io::Error::last_os_error());
                        }
                        fds[next] = fd;
                        next += 1;
                    }
                    Step::EmptyDir(_) => check(libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        c"mode=755,size=64k".as_ptr().cast(),
                    ))?,
                    Step::EmptyFile(_) => check(libc::mount(
                        c"/dev/null".as_ptr(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))?,
                    Step::MakeDir(_) => {
                        if libc::mkdir(path.as_ptr(), 0o755) != 0
                            && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                        {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    Step::Show(n, _) => {
                        let mut name = [0u8; 32];
                        let from = fd_path(fds[*n], &mut name);
                        check(libc::mount(
                            from.as_ptr(),
                            path.as_ptr(),
                            std::ptr::null(),
                            libc::MS_BIND | libc::MS_REC,
                            std::ptr::null(),
                        ))?;
                    }
                    Step::ReadOnly(_) => check(libc::mount(
                        std::ptr::null(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_REMOUNT
                            | libc::MS_BIND
                            | libc::MS_RDONLY
                            | libc::MS_NOSUID
                            | libc::MS_NODEV
                            | libc::MS_NOEXEC,
                        std::ptr::null(),
                    ))?,
                    Step::Enter(_) => check(libc::chdir(path.as_ptr()))?,
                }
            }
            for fd in fds.into_iter().take(next) {
                libc::close(fd);
            }
            own_user_namespace()
        }
    }
}

/// Moves the calling process, its mounts made, into a user namespace of
/// its own, as the same user, and into a copy of its mount namespace that
/// the new user namespace owns.
///
/// The copy's mounts are locked to it: not even a target running as root
/// can unmount or remount what hides a path. And a process of another user
/// namespace, even of the same user, is out of its reach: it cannot look
/// through `/proc/PID/root` or `/proc/PID/cwd` of the harness or of another
/// submission started confined, which see what it must not.
///
/// # Safety
///
/// For a single-threaded child between fork and exec: system calls alone.
unsafe fn own_user_namespace() -> io::Result<()> {
    let (uid, gid) = (libc::geteuid(), libc::getegid());
    if libc::unshare(libc::CLONE_NEWUSER) != 0 {
        return Err(io::Error::last_os_error());
    }
    // Mapping its own ids alone, a process may do without a privilege over
    // the namespace around, once it gives up setgroups(2).
    write_file(c"/proc/self/setgroups", b"deny")?;
    let mut line = [0u8; 32];
    write_file(c"/proc/self/uid_map", id_map(uid, &mut line))?;
    write_file(c"/proc/self/gid_map", id_map(gid, &mut line))?;
    check(libc::unshare(libc::CLONE_NEWNS))
}

/// Writes `bytes` to the file at `path` in one write.
///
/// # Safety
///
/// System calls alone.
unsafe fn write_file(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
    let result = if written == bytes.len() as isize {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    };
    libc::close(fd);
    result
}

/// `ID ID 1`, the line that maps `id` to itself, written into `buf`
/// without allocating.
fn id_map(id: u32, buf: &mut [u8; 32]) -> &[u8] {
    let mut len = decimal(id, &mut buf[..]);
    buf[len] = b' ';
    len += 1;
    len += decimal(id, &mut buf[len..]);
    buf[len..len + 3].copy_from_slice(b" 1\n");
    &buf[..len + 3]
}

/// Writes `n` in decimal at the start of `buf`; returns how many bytes.
fn decimal(n: u32, buf: &mut [u8]) -> usize {
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (n, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[i] = digits[len - 1 - i];
    }
    len
}

fn check(result: libc::c_int) -> io::Result<()> {
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// `/proc/self/fd/N` for `fd`, written into `buf` without allocating.
fn fd_path(fd: libc::c_int, buf: &mut [u8; 32]) -> &CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let len = decimal(fd.max(0) as u32, &mut buf[PREFIX.len()..]);
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/proc/self/fd")
}

/// Whether this process may make a mount namespace and mount a tmpfs in
/// it, tried in a child process that exits at once.
fn can_mount() -> io::Result<()> {
    // SAFETY: the child only makes system calls before it exits.
    unsafe {
        trial::in_child(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"tmpfs".as_ptr(),
                c"/".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn a_submission_sees_its_own_folder_in_the_hidden_folder_of_all_of_them() {
        let steps = plan(
            &[
                (p("/course/subs"), true),
                (p("/course/profile.toml"), false),
            ],
            &[p("/course/subs/alice")],
            &p("/course/subs/alice"),
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Open(p("/course/subs/alice")),
                Step::EmptyFile(p("/course/profile.toml")),
                Step::EmptyDir(p("/course/subs")),
                Step::MakeDir(p("/course/subs/alice")),
                Step::Show(0, p("/course/subs/alice")),
                Step::ReadOnly(p("/course/subs")),
                Step::Enter(p("/course/subs/alice")),
            ]
        );
    }

    #[test]
    fn a_folder_shown_deep_in_a_hidden_one_gets_every_directory_on_its_way() {
        let steps = plan(&[(p("/c"), true)], &[p("/c/x/y")], &p("/c/x/y")).unwrap();
        assert!(steps.contains(&Step::MakeDir(p("/c/x"))));
        assert!(steps.contains(&Step::MakeDir(p("/c/x/y"))));
    }

    #[test]
    fn a_path_inside_a_hidden_directory_is_hidden_with_it_and_one_inside_the_shown_folder_after_it()
    {
        let steps = plan(
            &[
                (p("/c/subs"), true),
                (p("/c/subs/bob"), true),
                (p("/c/subs/alice/.git"), true),
            ],
            &[p("/c/subs/alice")],
            &p("/c/subs/alice"),
        )
        .unwrap();
        assert!(!steps.contains(&Step::EmptyDir(p("/c/subs/bob"))));
        let show = steps
            .iter()
            .position(|s| matches!(s, Step::Show(..)))
            .unwrap();
        let git = steps
            .iter()
            .position(|s| *s == Step::EmptyDir(p("/c/subs/alice/.git")))
            .unwrap();
        assert!(git > show, "{steps:?}");
    }

    #[test]
    fn a_folder_outside_every_hidden_one_needs_no_mount_to_be_seen() {
        let steps = plan(
            &[(p("/c/profile.toml"), false)],
            &[p("/tmp/scratch")],
            &p("/tmp/scratch"),
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::EmptyFile(p("/c/profile.toml")),
                Step::Enter(p("/tmp/scratch")),
            ]
        );
    }

    #[test]
    fn a_working_directory_that_would_be_hidden_or_a_shown_folder_hidden_whole_is_refused() {
        let e = plan(&[(p("/c/subs"), true)], &[p("/c/subs/a")], &p("/c/subs/b")).unwrap_err();
        assert!(e.0.contains("/c/subs/b would be hidden"), "{e:?}");
        let e = plan(&[(p("/c/subs/a"), true)], &[p("/c/subs/a")], &p("/")).unwrap_err();
        assert!(e.0.contains("both hidden and shown"), "{e:?}");
    }

    #[test]
    fn a_descriptor_is_named_under_proc_self_fd() {
        let mut buf = [0u8; 32];
        assert_eq!(fd_path(7, &mut buf), c"/proc/self/fd/7");
        assert_eq!(fd_path(1234, &mut buf), c"/proc/self/fd/1234");
    }

    #[test]
    fn an_id_is_mapped_to_itself_alone() {
        let mut buf = [0u8; 32];
        assert_eq!(id_map(0, &mut buf), b"0 0 1\n");
        assert_eq!(id_map(4294967294, &mut buf), b"4294967294 4294967294 1\n");
    }
}
