//! A submission started confined, as a grader starts each one of a class:
//! in the isolation the machine grants, it lists only its own folder among
//! the submissions, cannot read its neighbour's folder nor the assignment
//! profile, and sees no network interface but its own loopback. It reports
//! what it saw, read from inside; nothing is ever sent anywhere.
//!
//! Where the machine grants no namespace (`SOCKSPEC_ISOLATION=shared`, or a
//! container that refuses them), nothing can be hidden, and the harness
//! says so instead of pretending.
//!
//! Its own `main` (no test harness): it enters the harness's user
//! namespace first, as `sockspec` does, while it is single-threaded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sockspec_engine::kernel::confine::{self, Confinement};
use sockspec_engine::kernel::netns::{self, Isolation};
use sockspec_engine::model::timing::Timing;
use sockspec_engine::targets::fleet::Fleet;
use sockspec_engine::targets::launch::Launched;
use sockspec_engine::targets::target::{Launch, Process, Workdir};
use sockspec_engine::Transport;

/// What the submission looks at, each line `name = what it saw` or
/// `name ! the error it got`.
const LOOK: &str = r#"import os, socket, sys
subs, profile, neighbour = sys.argv[1], sys.argv[2], sys.argv[3]
def look(name, what):
    try:
        print(name, "=", what())
    except OSError as e:
        print(name, "!", type(e).__name__)
look("submissions", lambda: sorted(os.listdir(subs)))
look("neighbour", lambda: sorted(os.listdir(os.path.join(subs, "b"))))
look("neighbour-file", lambda: repr(open(os.path.join(subs, "b", "server.py")).read()))
look("profile", lambda: repr(open(profile).read()))
look("own", lambda: sorted(os.listdir(".")))
look("interfaces", lambda: sorted(name for _, name in socket.if_nameindex()))
look("scratch", lambda: os.access(os.environ["SOCKSPEC_SCRATCH"], os.W_OK))
look("through-harness", lambda: sorted(os.listdir(f"/proc/{os.getppid()}/root{subs}")))
look("through-neighbour", lambda: sorted(os.listdir(f"/proc/{neighbour}/cwd")))
def unmount():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(subs.encode(), 0) != 0:
        raise OSError(ctypes.get_errno(), "umount2")
    return sorted(os.listdir(subs))
look("unmounted", unmount)
"#;

/// A server with its port written in its code, as the neighbour's is.
const SERVER: &str = "import socket, time
s = socket.socket()
s.bind((\"127.0.0.1\", 47914))
s.listen()
time.sleep(30)
";

const SECRET: &str = "hidden-check-expects-XYZZY";

/// A class's folder: `submissions/a` (the one started), `submissions/b`
/// (its neighbour) and the profile beside them.
fn course(root: &Path) {
    std::fs::create_dir_all(root.join("submissions/a")).unwrap();
    std::fs::create_dir_all(root.join("submissions/b")).unwrap();
    std::fs::write(root.join("submissions/a/look.py"), LOOK).unwrap();
    std::fs::write(root.join("submissions/b/server.py"), SERVER).unwrap();
    std::fs::write(
        root.join("profile.toml"),
        format!("[checks.hidden]\nvisibility = \"hidden\"\n# {SECRET}\n"),
    )
    .unwrap();
}

/// Submission `name` of the class in `root`, started confined with
/// `command`, given no port.
fn launch(root: &Path, name: &str, command: String) -> Launch {
    let subs = root.join("submissions");
    Launch {
        command,
        port: None,
        stdin: false,
        transport: Transport::Stream,
        workdir: Workdir::Dir(subs.join(name)),
        file: None,
        confine: Some(Box::new(Confinement {
            show: subs.join(name),
            hide: vec![subs, root.join("profile.toml")],
        })),
    }
}

/// What the submission saw, by name.
fn seen(p: &mut Process) -> BTreeMap<String, String> {
    assert!(
        p.wait_exit(Duration::from_secs(20)).is_some(),
        "the submission did not end"
    );
    p.stdout()
        .wait_closed(Instant::now() + Duration::from_secs(5));
    let out = String::from_utf8_lossy(&p.stdout().since(0)).into_owned();
    let err = p.stderr().tail(20);
    let seen: BTreeMap<String, String> = out
        .lines()
        .filter_map(|l| {
            let (name, what) = l.trim_end().split_once(' ')?;
            Some((name.to_string(), what.to_string()))
        })
        .collect();
    assert_eq!(seen.len(), 10, "{out}\n{err}");
    seen
}

fn main() {
    let level = netns::prepare().unwrap_or_else(|refused| panic!("{refused}"));
    let root = tempfile::tempdir().unwrap();
    course(root.path());
    // The submission is started on this thread's loopback, as a check's is.
    let loopback = netns::fresh_loopback();
    let fleet = Fleet::new();
    // The neighbour runs at the same time, its port found from the kernel.
    let mut neighbour = Launched::start(
        launch(root.path(), "b", "exec python3 server.py".into()),
        &fleet,
        &Timing::default(),
    )
    .map_err(|e| e.full())
    .unwrap();
    assert_eq!(neighbour.port(), 47914);
    let subs = root.path().join("submissions");
    let look = format!(
        "exec python3 look.py {} {} {}",
        subs.display(),
        root.path().join("profile.toml").display(),
        neighbour.process().pid(),
    );
    let mut p = fleet
        .spawn(&launch(root.path(), "a", look.clone()))
        .unwrap();
    let saw = seen(&mut p);
    let can = confine::can_confine();
    println!("isolation {level:?}, loopback {loopback:?}, can confine: {can}");
    for (name, what) in &saw {
        println!("  {name} {what}");
    }
    assert_eq!(p.confined(), can);
    if level == Isolation::Shared {
        // Nothing is hidden, and the harness says so.
        assert!(!can, "confinement claimed without a namespace");
        assert_eq!(saw["submissions"], "= ['a', 'b']");
        assert_eq!(saw["neighbour"], "= ['server.py']");
        assert_eq!(saw["through-neighbour"], "= ['server.py']");
        println!("confinement: not in force where no namespace is granted, as reported");
        return;
    }
    assert!(
        can,
        "{level:?} grants namespaces, yet confinement was refused"
    );
    assert_eq!(saw["submissions"], "= ['a']", "only its own folder");
    assert_eq!(saw["neighbour"], "! FileNotFoundError");
    assert_eq!(saw["neighbour-file"], "! FileNotFoundError");
    assert!(!saw["profile"].contains(SECRET), "{}", saw["profile"]);
    assert_eq!(saw["own"], "= ['look.py']");
    assert_eq!(
        saw["scratch"], "= True",
        "its scratch directory stays writable"
    );
    assert_eq!(saw["interfaces"], "= ['lo']", "its own loopback alone");
    // Nor through the harness's or the neighbour's view, nor by undoing
    // the mounts (as root, too).
    assert_eq!(saw["through-harness"], "! PermissionError");
    assert_eq!(saw["through-neighbour"], "! PermissionError");
    assert!(saw["unmounted"].starts_with('!'), "{}", saw["unmounted"]);
    // The harness's own view is untouched.
    assert!(root.path().join("submissions/b/server.py").is_file());
    assert!(std::fs::read_to_string(root.path().join("profile.toml"))
        .unwrap()
        .contains(SECRET));

    // A submission cannot be started in a folder the confinement hides.
    let mut elsewhere = launch(root.path(), "b", look);
    elsewhere.confine = Some(Box::new(Confinement {
        show: subs.join("a"),
        hide: vec![subs.clone()],
    }));
    let refused = fleet.spawn(&elsewhere).err().expect("refused");
    assert!(refused.to_string().contains("would be hidden"), "{refused}");
    println!("confinement: in force under {level:?}");
}
