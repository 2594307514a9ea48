//! Steps on the files the target writes, in the folder of its own it runs
//! in ([`Workdir::Own`](crate::targets::target::Workdir)), deep inside its
//! scratch tree: expect a file of a described body there, expect nothing
//! written anywhere else in the tree, list what the folder holds.
//!
//! Each step first lets the target finish what it was sent: the harness's
//! writes of the upload end, then the target is watched until every
//! process of it sleeps (in `accept`, in `recv`) or it exited, with what
//! the tree holds unchanged meanwhile; bounded by the reply deadline and
//! the time the body's bytes earn. A stored file is compared as it is read,
//! a chunk at a time, against the body regenerated from its description:
//! a file of many MiB is never held whole, and the first byte that differs
//! is named.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Instant, SystemTime};

use super::frame::{body_words, CHUNK};
use super::link::join_writer;
use super::{fault, miss, Domain, Runs, StepError, StepResult};
use crate::conversations::session::Session;
use crate::conversations::transcript::Event;
use crate::judge::expect_frame::BodySpec;
use crate::judge::show;
use crate::kernel::procfs;
use crate::model::level::Level;
use crate::model::timing::{Deadline, Timing};

/// How many entries of the scratch tree are looked at, at most: a target
/// that writes a million files is judged on the first ones.
const WALKED: usize = 10_000;

/// A step about the files the target writes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FileStep {
    /// Expect a file named `name` in the target's folder holding `body`; a
    /// miss weighs `level`. With `any_name`, a target that stored the
    /// upload under another name (a fixed one) is judged on the file it
    /// wrote last, and the name it used is noted: the name is another
    /// check's to judge.
    Expect {
        name: String,
        body: BodySpec,
        any_name: bool,
        level: Level,
    },
    /// Expect no file anywhere in the target's scratch tree outside its
    /// folder; a miss names where each one appeared.
    ExpectNoneOutside { level: Level },
    /// Record what the target's folder holds, for the transcript.
    List,
}

impl FileStep {
    pub fn needs_process(&self) -> bool {
        true
    }
}

impl fmt::Display for FileStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = |f: &mut fmt::Formatter<'_>, level: &Level| match level {
            Level::Must => Ok(()),
            other => write!(f, " [{other}]"),
        };
        match self {
            FileStep::Expect {
                name,
                body,
                any_name,
                level: l,
            } => {
                write!(
                    f,
                    "expect the file {} in the target's folder holding {}",
                    shown_name(name),
                    body_words(body)
                )?;
                if *any_name {
                    f.write_str(" (or the file it stored under another name)")?;
                }
                level(f, l)
            }
            FileStep::ExpectNoneOutside { level: l } => {
                f.write_str("expect no file written outside the target's folder")?;
                level(f, l)
            }
            FileStep::List => f.write_str("list the files in the target's folder"),
        }
    }
}

/// A file name as a student reads it: quoted, escapes for what does not
/// print.
fn shown_name(name: &str) -> String {
    format!("{name:?}")
}

impl Domain for FileStep {
    /// The files already judged, as they were then.
    type State = FileState;
}

/// What the files domain keeps during a conversation.
#[derive(Default)]
pub(crate) struct FileState {
    /// Each file a step judged, with its length and time of change then:
    /// a file unchanged since is not taken for a later upload stored
    /// under another name.
    judged: Vec<(PathBuf, u64, Option<SystemTime>)>,
}

impl Runs<FileStep> for Session<'_> {
    fn run(&mut self, step: &FileStep) -> StepResult {
        match step {
            FileStep::Expect {
                name,
                body,
                any_name,
                level,
            } => self
                .expect_file(name, body, *any_name)
                .map_err(|e| e.at_level(*level)),
            FileStep::ExpectNoneOutside { level } => {
                self.expect_none_outside().map_err(|e| e.at_level(*level))
            }
            FileStep::List => {
                let (_, folder) = self.places()?;
                self.wait_written(0)?;
                let held = listing(&folder, &walk(&folder, None));
                self.record(None, Event::note(held));
                Ok(())
            }
        }
    }
}

impl Session<'_> {
    /// The target's scratch tree and its folder in it.
    fn places(&mut self) -> Result<(PathBuf, PathBuf), StepError> {
        let p = self.own_process("look at the files of")?;
        let folder = p.folder().map(Path::to_path_buf).ok_or_else(|| {
            fault("the target does not work in a folder of its own (a bug in the engine)")
        })?;
        Ok((p.scratch().to_path_buf(), folder))
    }

    /// Waits until the target is done with what it was sent: the
    /// harness's writes end, then the target sleeps or has exited, with
    /// the tree unchanged for [`Timing::ASLEEP_FOR`]. Bounded by the reply
    /// deadline and the time `len` bytes earn; past it, what is there is
    /// judged.
    fn wait_written(&mut self, len: u64) -> StepResult {
        for link in self.domains.stream.links.values_mut() {
            join_writer(link);
        }
        let (scratch, _) = self.places()?;
        let bound = self.timing.deadline(Deadline::Reply)
            + self
                .timing
                .earned(usize::try_from(len).unwrap_or(usize::MAX));
        let deadline = Instant::now() + bound;
        let mut last = None;
        let mut unchanged_since = Instant::now();
        for polls in 0u32.. {
            let p = self.own_process("watch")?;
            let exited = p.exited().is_some();
            // Every thread asleep: a server that stores on a thread of its
            // own has its main thread asleep in accept while it writes.
            let asleep = procfs::threads_asleep(&procfs::family_of(p.pid()));
            let now = signature(&walk(&scratch, None));
            if last.as_ref() != Some(&now) {
                last = Some(now);
                unchanged_since = Instant::now();
            }
            if exited || (asleep && unchanged_since.elapsed() >= Timing::ASLEEP_FOR) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.record(
                    None,
                    Event::note(format!(
                        "the target was still busy or still writing after {:.1}s; its files \
                         are judged as they are",
                        bound.as_secs_f64()
                    )),
                );
                return Ok(());
            }
            thread::sleep(match polls {
                0..10 => Timing::FIRST_POLL,
                10..30 => Timing::FAST_POLL,
                _ => Timing::POLL,
            });
        }
        Ok(())
    }

    fn expect_file(&mut self, name: &str, body: &BodySpec, any_name: bool) -> StepResult {
        self.wait_written(body.len())?;
        let (_, folder) = self.places()?;
        let named = folder.join(name);
        let path = if named.is_file() && named.starts_with(&folder) {
            named
        } else {
            let files = walk(&folder, None);
            // Only a file written during this conversation, and changed
            // since a step judged it, can be this upload.
            let began = self.transcript.lock().ok().map(|t| t.start().elapsed());
            let began = began.and_then(|ago| SystemTime::now().checked_sub(ago));
            let judged = &self.domains.files.judged;
            let newest = files
                .iter()
                .filter(|f| f.is_file)
                .filter(|f| match (began, f.modified) {
                    (Some(b), Some(m)) => m >= b,
                    _ => true,
                })
                .filter(|f| !judged.contains(&(f.path.clone(), f.len, f.modified)))
                .max_by_key(|f| f.modified)
                .map(|f| f.path.clone());
            match (any_name, newest) {
                (true, Some(other)) => {
                    let shown = relative(&folder, &other);
                    self.notes.push(format!(
                        "the upload named {} was stored as {}",
                        shown_name(name),
                        shown_name(&shown)
                    ));
                    other
                }
                _ => {
                    return Err(miss(
                        Level::Must,
                        format!(
                            "no file named {} in the server's folder after the upload: {}",
                            shown_name(name),
                            listing(&folder, &files)
                        ),
                    ))
                }
            }
        };
        let shown = shown_name(&relative(&folder, &path));
        if let Ok(meta) = fs::symlink_metadata(&path) {
            self.domains
                .files
                .judged
                .push((path.clone(), meta.len(), meta.modified().ok()));
        }
        match compare(&path, body) {
            Ok(Same::Yes) => {
                self.record(
                    None,
                    Event::note(format!(
                        "the stored file {shown} holds the {} bytes uploaded",
                        body.len()
                    )),
                );
                Ok(())
            }
            Ok(difference) => Err(miss(Level::Must, difference.words(&shown, body.len()))),
            Err(e) => Err(fault(format!(
                "could not read the stored file {shown}: {e}"
            ))),
        }
    }

    fn expect_none_outside(&mut self) -> StepResult {
        self.wait_written(0)?;
        let (scratch, folder) = self.places()?;
        let outside: Vec<String> = walk(&scratch, Some(&folder))
            .iter()
            .filter(|f| !f.is_dir)
            .map(|f| {
                format!(
                    "{} ({} from the server's folder)",
                    f.path.display(),
                    relative(&folder, &f.path)
                )
            })
            .collect();
        match outside.as_slice() {
            [] => Ok(()),
            found => Err(miss(
                Level::Must,
                format!(
                    "a file appeared outside the server's folder: {}",
                    found.join(", ")
                ),
            )),
        }
    }
}

/// One entry of a scratch tree.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    path: PathBuf,
    is_dir: bool,
    is_file: bool,
    len: u64,
    modified: Option<SystemTime>,
}

/// Every entry under `root` (symbolic links not followed), but for the
/// directory `skip` and what is in it, and the directories on the way to
/// it; at most [`WALKED`] entries.
fn walk(root: &Path, skip: Option<&Path>) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if out.len() >= WALKED {
                return out;
            }
            let path = e.path();
            if skip == Some(path.as_path()) {
                continue;
            }
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let is_dir = meta.is_dir();
            let on_the_way = skip.is_some_and(|s| s.starts_with(&path));
            if is_dir {
                todo.push(path.clone());
            }
            if on_the_way {
                continue;
            }
            out.push(Entry {
                path,
                is_dir,
                is_file: meta.is_file(),
                len: meta.len(),
                modified: meta.modified().ok(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What changes when anything in the tree is written: its entries and
/// their lengths.
fn signature(entries: &[Entry]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    entries
        .iter()
        .map(|e| (e.path.clone(), e.len, e.modified))
        .collect()
}

/// `path` as seen from `folder`: `x`, `a/x`, `../x`.
fn relative(folder: &Path, path: &Path) -> String {
    let f: Vec<_> = folder.components().collect();
    let p: Vec<_> = path.components().collect();
    let common = f.iter().zip(&p).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); f.len() - common];
    parts.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// "holds: a.bin (3 bytes), b.bin (0 bytes)", or "is empty".
fn listing(folder: &Path, entries: &[Entry]) -> String {
    let files: Vec<String> = entries
        .iter()
        .filter(|e| !e.is_dir)
        .map(|e| {
            format!(
                "{} ({} bytes)",
                shown_name(&relative(folder, &e.path)),
                e.len
            )
        })
        .collect();
    match files.as_slice() {
        [] => "the server's folder is empty".to_string(),
        found => format!("the server's folder holds {}", found.join(", ")),
    }
}

/// How a stored file compares with the body uploaded.
#[derive(Debug, PartialEq, Eq)]
enum Same {
    Yes,
    /// The first byte that differs, at `offset`: a few bytes of each from
    /// there.
    Differs {
        offset: u64,
        stored: Vec<u8>,
        sent: Vec<u8>,
    },
    /// The file ends after `len` bytes, all of them right.
    Short {
        len: u64,
    },
    /// The file goes on past the body, to `len` bytes.
    Long {
        len: u64,
    },
}

impl Same {
    fn words(&self, name: &str, uploaded: u64) -> String {
        match self {
            Same::Yes => format!("the stored file {name} holds the {uploaded} bytes uploaded"),
            Same::Differs {
                offset,
                stored,
                sent,
            } => format!(
                "the stored file {name} differs from the upload at byte {offset} of {uploaded}: \
                 it holds {} where {} was sent",
                show::quoted(stored, 24),
                show::quoted(sent, 24)
            ),
            Same::Short { len } => format!(
                "the stored file {name} holds {len} of the {uploaded} bytes uploaded (those \
                 match): the rest was never written"
            ),
            Same::Long { len } => format!(
                "the stored file {name} holds {len} bytes, {} more than the {uploaded} \
                 uploaded (the first {uploaded} match)",
                len - uploaded
            ),
        }
    }
}

/// Reads `path` a chunk at a time against `body`.
fn compare(path: &Path, body: &BodySpec) -> std::io::Result<Same> {
    const SHOWN: usize = 8;
    let mut file = fs::File::open(path)?;
    let mut got = vec![0u8; CHUNK];
    let mut want = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = file.read(&mut got)?;
        if n == 0 {
            return Ok(match offset < body.len() {
                true => Same::Short { len: offset },
                false => Same::Yes,
            });
        }
        let m = body.fill(offset, &mut want[..n]);
        if let Some(at) = (0..m).find(|&i| got[i] != want[i]) {
            let end = (at + SHOWN).min(m);
            return Ok(Same::Differs {
                offset: offset + at as u64,
                stored: got[at..(at + SHOWN).min(n)].to_vec(),
                sent: want[at..end].to_vec(),
            });
        }
        if m < n {
            let rest = fs::metadata(path).map_or(0, |meta| meta.len());
            return Ok(Same::Long {
                len: rest.max(offset + n as u64),
            });
        }
        offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    //! The comparison and the walk, on files the tests write.

    use super::*;

    fn seeded(len: u64) -> BodySpec {
        BodySpec::Seeded { seed: 7, len }
    }

    fn written(body: &BodySpec) -> Vec<u8> {
        let mut bytes = vec![0u8; body.len() as usize];
        body.fill(0, &mut bytes);
        bytes
    }

    #[test]
    fn a_file_of_the_body_s_bytes_is_the_same_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let body = seeded(3 * CHUNK as u64 + 5);
        fs::write(dir.path().join("f"), written(&body)).unwrap();
        assert_eq!(compare(&dir.path().join("f"), &body).unwrap(), Same::Yes);
        fs::write(dir.path().join("e"), b"").unwrap();
        assert_eq!(
            compare(&dir.path().join("e"), &seeded(0)).unwrap(),
            Same::Yes
        );
    }

    #[test]
    fn the_first_differing_byte_is_named_even_in_a_later_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let body = seeded(2 * CHUNK as u64 + 10);
        let mut bytes = written(&body);
        let at = CHUNK + 3;
        bytes[at] ^= 0xff;
        fs::write(dir.path().join("f"), &bytes).unwrap();
        match compare(&dir.path().join("f"), &body).unwrap() {
            Same::Differs { offset, .. } => assert_eq!(offset, at as u64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_short_file_and_a_long_one_say_how_long_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let body = seeded(100);
        let bytes = written(&body);
        fs::write(dir.path().join("s"), &bytes[..60]).unwrap();
        assert_eq!(
            compare(&dir.path().join("s"), &body).unwrap(),
            Same::Short { len: 60 }
        );
        let mut long = bytes.clone();
        long.extend_from_slice(b"\n");
        fs::write(dir.path().join("l"), &long).unwrap();
        assert_eq!(
            compare(&dir.path().join("l"), &body).unwrap(),
            Same::Long { len: 101 }
        );
    }

    #[test]
    fn the_walk_outside_a_folder_skips_it_and_the_directories_on_the_way() {
        let root = tempfile::tempdir().unwrap();
        let folder = root.path().join("d1/d2/work");
        fs::create_dir_all(&folder).unwrap();
        fs::write(folder.join("inside"), b"").unwrap();
        fs::write(root.path().join("d1/x"), b"").unwrap();
        let found: Vec<String> = walk(root.path(), Some(&folder))
            .iter()
            .map(|e| relative(&folder, &e.path))
            .collect();
        assert_eq!(found, vec!["../../x".to_string()]);
    }
}
