//! The `file-upload` server checks: the harness uploads generated files
//! and reads back what the server stored.
//!
//! The server runs in a folder of its own deep inside a scratch tree the
//! harness owns (a check with file steps asks for it), so what it writes
//! is the harness's to look at and a name that climbs out (`../x`) still
//! lands in the tree. A server that exits after one upload, as the course
//! server does, is started again between uploads and reported once, by
//! `one-shot`; the others judge what it stored.

use sockspec_engine::conversations::check::{Body, Check, Explain};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::{Conn, FrameCut, FrameOut};
use sockspec_engine::judge::expect_frame::BodySpec;
use sockspec_engine::model::cut::Cut;
use sockspec_engine::model::level::Level;
use sockspec_engine::model::profile::{Number, Profile};

use super::{form, framing, stored_as, Form, MD5, NAME_KEY, SIZE_KEY};
use crate::checks::{server, BUF};
use crate::commands::prefix;

const MIB: u64 = 1024 * 1024;

/// The body of the uploads whose subject is not the content (the framing,
/// the name, where the file goes): text, which a server that decodes
/// stores unchanged too.
const TEXT: &[u8] = b"a small text file\nits second line\n";

/// The spellings of the size key sent when the profile names none.
const SIZE_KEYS: &[&str] = &["size", "file_size", "filesize"];
/// The spellings of the name key sent when the profile names none.
const NAME_KEYS: &[&str] = &["filename", "file_name"];

/// The upload of `body` as the file `name`: `prefix(H)`, the JSON header
/// with the size and the name under every spelling the profile accepts
/// (and the MD5 when it asks), then the body.
pub fn upload_frame(p: &Profile, name: &str, body: BodySpec) -> FrameOut {
    let keys = |param, all: &'static [&'static str]| -> Vec<String> {
        match p.text(param) {
            "" => all.iter().map(|k| k.to_string()).collect(),
            one => vec![one.to_string()],
        }
    };
    let sizes = keys(&SIZE_KEY, SIZE_KEYS);
    let len = body.len();
    let md5 = p.switch(&MD5).then(|| body.md5_hex());
    let mut frame = FrameOut::json(prefix(p), &sizes[0], body);
    frame.framing = framing(p, &sizes[0]);
    for key in &sizes[1..] {
        frame = frame.field(key, len);
    }
    for key in keys(&NAME_KEY, NAME_KEYS) {
        frame = frame.field(&key, name);
    }
    if let Some(sum) = md5 {
        frame = frame.field("md5", sum);
    }
    if form(p) == Form::FtpPut {
        frame = frame.field("cmd", "put");
    }
    frame
}

/// Uploads `body` as `name` on a new connection `conn`, cut as `cut`.
fn upload(
    c: Conversation,
    p: &Profile,
    conn: Conn,
    name: &str,
    body: BodySpec,
    cut: FrameCut,
) -> Conversation {
    c.connect(conn)
        .send_frame(conn, upload_frame(p, name, body), cut)
}

/// Ends an upload: the connection closed (reset if the server closed
/// first: the course's one-shot server binds its fixed port without
/// SO_REUSEADDR, and its closing connection would hold the port for a
/// minute), and a server that exited once done with its client started
/// again for the next.
fn done(c: Conversation, conn: Conn) -> Conversation {
    c.release(conn).restart_if_exited(false)
}

/// Uploads `body` and expects it stored, byte for byte, under any name.
fn stored(
    c: Conversation,
    p: &Profile,
    conn: Conn,
    name: &str,
    body: BodySpec,
    cut: FrameCut,
) -> Conversation {
    let c = upload(c, p, conn, name, body.clone(), cut).expect_file(
        &stored_as(p, name),
        body,
        true,
        Level::Must,
    );
    done(c, conn)
}

/// [`TEXT`] as a body.
fn text() -> BodySpec {
    BodySpec::Literal(TEXT.to_vec())
}

/// [`TEXT`] repeated to `len` bytes.
fn repeated(len: u64) -> BodySpec {
    BodySpec::Repeated {
        pattern: TEXT.to_vec(),
        len,
    }
}

fn seeded(seed: u64, len: u64) -> BodySpec {
    BodySpec::Seeded { seed, len }
}

/// A plain upload any conforming server stores, run after each abusive
/// check.
pub fn sanity(p: &Profile) -> Conversation {
    stored(
        Conversation::new(),
        p,
        Conn(90),
        "sanity.bin",
        seeded(90, 300),
        FrameCut::Whole,
    )
}

fn check(
    id: &'static str,
    level: Level,
    summary: &'static str,
    expectation: &'static str,
    hint: &'static str,
    explain: Explain,
    build: fn(&Profile) -> Conversation,
) -> Check {
    Check {
        hint: Some(hint),
        explain,
        ..server(id, level, summary, expectation, Body::Conversation(build))
    }
}

pub fn checks() -> Vec<Check> {
    vec![
        content(),
        split_header(),
        merged(),
        name(),
        traversal(),
        truncated(),
        bad_header(),
        one_shot(),
    ]
}

/// The largest upload of `content`: 100 MiB by default, streamed; the
/// bench raises it to 1 GiB.
pub const LARGEST: Number = Number {
    key: "largest",
    meaning: "the largest file file-upload.content uploads to a server, in bytes",
    min: 1 << 20,
    max: 1 << 34,
    default: 100 << 20,
};

/// The sizes `content` uploads: the edges of one receive, then large.
fn sizes(p: &Profile) -> Vec<u64> {
    let buf = p.number(&BUF) as u64;
    let mut sizes = vec![0, 1, buf - 1, buf, buf + 1, MIB, p.number(&LARGEST) as u64];
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

fn content() -> Check {
    check(
        "file-upload.content",
        Level::Must,
        "the stored file is byte-identical to the upload, from 0 bytes to 100 MiB",
        "the server reads exactly `size` bytes after the header, looping over receives, and \
         writes them unchanged (binary, not decoded) to the file",
        "loop until `size` bytes are in (received += len(data)), writing each piece as it \
         comes, in binary mode ('wb'), never decoding it; a `recv(size)` gets what has \
         arrived, not `size` bytes",
        Explain {
            why: "A receive returns what has arrived, up to the count asked: a large file \
                  arrives over many receives, and its bytes are not text.",
            mistake: "data = conn.recv(header['filesize'])\n\
                      with open(name, 'w') as f:\n    f.write(data.decode())",
            fix: "received = 0\nwith open(name, 'wb') as f:\n    while received < size:\n        \
                  data = conn.recv(min(BUF, size - received))\n        if not data:\n            \
                  break\n        f.write(data)\n        received += len(data)",
        },
        |p| {
            // The prefix and the header go apart from the body: the body's
            // loop is on its own.
            sizes(p)
                .into_iter()
                .enumerate()
                .fold(Conversation::new(), |c, (i, len)| {
                    let n = i as u8 + 1;
                    let name = format!("upload-{len}.bin");
                    stored(
                        c,
                        p,
                        Conn(n),
                        &name,
                        seeded(100 + u64::from(n), len),
                        FrameCut::HeadApart,
                    )
                })
        },
    )
}

fn split_header() -> Check {
    check(
        "file-upload.split-header",
        Level::Must,
        "prefix and header arriving byte by byte are read correctly",
        "the server reads the prefix's bytes and then exactly H header bytes, looping until \
         each is whole",
        "read the prefix and the header with a loop that gathers exactly the count needed \
         (recv_exactly(conn, 4), then recv_exactly(conn, H)): one recv(4) can return 1 byte",
        Explain {
            why: "TCP keeps no message boundaries: the prefix and the header can arrive a few \
                  bytes at a time, and one receive gets only what has arrived.",
            mistake: "head_len = struct.unpack('i', conn.recv(4))[0]\n\
                      header = json.loads(conn.recv(head_len))",
            fix: "def recv_exactly(conn, n):\n    data = b''\n    while len(data) < n:\n        \
                  part = conn.recv(n - len(data))\n        if not part:\n            raise \
                  ConnectionError('closed early')\n        data += part\n    return data",
        },
        |p| {
            stored(
                Conversation::new(),
                p,
                Conn(1),
                "split-header.bin",
                repeated(1000),
                FrameCut::HeaderBytewise,
            )
        },
    )
}

fn merged() -> Check {
    check(
        "file-upload.merged",
        Level::Must,
        "prefix, header and body arriving in one piece are read correctly",
        "the server reads no more than the header's H bytes for the header, so the body's \
         first bytes, arrived with it, go to the file",
        "read the header with recv of exactly the bytes left of it (H - len(got)), never \
         recv(1024): the body's first bytes arrive in the same receive and would be lost",
        Explain {
            why: "A client's prefix, header and body often arrive in one segment: a receive \
                  larger than the header takes the body's first bytes with it.",
            mistake: "header = json.loads(conn.recv(1024))",
            fix: "header = json.loads(recv_exactly(conn, head_len))",
        },
        |p| {
            let c = stored(
                Conversation::new(),
                p,
                Conn(1),
                "merged-small.bin",
                repeated(10),
                FrameCut::Whole,
            );
            let len = p.number(&BUF) as u64 * 2 + 7;
            stored(c, p, Conn(2), "merged.bin", repeated(len), FrameCut::Whole)
        },
    )
}

fn name() -> Check {
    check(
        "file-upload.name",
        Level::Should,
        "the file is named after the header's filename, Unicode names included",
        "the server stores the upload under the header's filename (its last path component), \
         any Unicode included",
        "open the file with the header's filename (os.path.basename of it), not a fixed name; \
         Python's str handles a name such as 回顾.mp4 as it is",
        Explain {
            why: "The client names the file: a server that stores every upload under one \
                  fixed name loses all but the last, and the user cannot find theirs.",
            mistake: "with open('received_file', 'wb') as f:",
            fix: "name = os.path.basename(header['filename'])\nwith open(name, 'wb') as f:",
        },
        |p| {
            // Text, so that only the name is judged here: a server that
            // writes decoded text stores it unchanged (content catches it).
            let name = "回顾.mp4";
            let c = upload(
                Conversation::new(),
                p,
                Conn(1),
                name,
                text(),
                FrameCut::Whole,
            )
            .expect_file(&stored_as(p, name), text(), false, Level::Should)
            .list_files();
            done(c, Conn(1))
        },
    )
}

fn traversal() -> Check {
    check(
        "file-upload.traversal",
        Level::Must,
        "no filename (../x, a/../../x, an absolute path) makes it write outside its directory",
        "the server writes only inside its directory whatever the header's filename: it keeps \
         the name's last path component, or refuses the upload",
        "keep only the name's last component: os.path.basename(header['filename']); a name \
         like ../x or /tmp/x used as a path writes wherever it points",
        Explain {
            why: "The filename comes from the network: used as a path it lets any client \
                  write, or overwrite, any file the server can reach.",
            mistake: "with open(header['filename'], 'wb') as f:",
            fix: "name = os.path.basename(header['filename'])\nif not name or name in ('.', \
                  '..'):\n    conn.close()\nelse:\n    with open(name, 'wb') as f:\n        ...",
        },
        |p| {
            [
                "../up-parent.bin",
                "a/../../up-nested.bin",
                "{scratch}/up-absolute.bin",
            ]
            .into_iter()
            .enumerate()
            .fold(Conversation::new(), |c, (i, name)| {
                let conn = Conn(i as u8 + 1);
                let c = upload(c, p, conn, name, text(), FrameCut::Whole)
                    .expect_no_file_outside(Level::Must)
                    .list_files();
                done(c, conn)
            })
        },
    )
}

/// How much of the body a disconnecting client sends, and how much it
/// claims.
const SENT_OF_TRUNCATED: u64 = 64 * 1024;
const CLAIMED_BY_TRUNCATED: u64 = 1024 * 1024;

fn truncated() -> Check {
    Check {
        abusive: true,
        ..check(
            "file-upload.truncated",
            Level::Should,
            "a client that disconnects mid-body leaves a server that neither spins nor crashes",
            "when the connection ends before `size` bytes are in, the server stops reading \
             (recv returned b''), closes the file and the connection, and serves the next \
             client",
            "end the body's loop when recv returns b'' (the client is gone): `if not data: \
             break`; a loop on `received < size` alone receives b'' forever at full CPU",
            Explain {
                why: "A client can vanish in the middle of an upload: recv then returns b'' \
                      at once, every time, and a loop that only counts bytes never ends.",
                mistake: "while received < size:\n    data = conn.recv(1024)\n    \
                          f.write(data)\n    received += len(data)",
                fix:
                    "while received < size:\n    data = conn.recv(1024)\n    if not data:\n        \
                      break  # the client left: the upload is incomplete\n    f.write(data)\n    \
                      received += len(data)",
            },
            |p| {
                // The head of an upload of CLAIMED bytes, then only SENT of
                // them, then the end of the connection.
                let frame = upload_frame(p, "truncated.bin", repeated(CLAIMED_BY_TRUNCATED));
                let mut data = frame.head().unwrap_or_default();
                data.extend(TEXT.iter().cycle().take(SENT_OF_TRUNCATED as usize));
                Conversation::new()
                    .connect(Conn(1))
                    .send(Conn(1), data, Cut::Whole)
                    .close(Conn(1))
                    .expect_idle()
                    .list_files()
                    .restart_if_exited(false)
            },
        )
    }
}

/// The most virtual memory a server may reserve while a lying prefix's
/// bytes have not arrived: far above any buffer a reader needs, far below
/// the 2 GiB `recv(2**31 - 1)` reserves.
const RESERVED_AT_MOST_MIB: u32 = 256;

/// `prefix(len)` then `bytes`: a head that need not tell the truth.
fn head(p: &Profile, len: u64, bytes: &[u8]) -> Vec<u8> {
    let mut data = prefix(p).encode(len).unwrap_or_default();
    data.extend_from_slice(bytes);
    data
}

fn bad_header() -> Check {
    Check {
        abusive: true,
        ..check(
            "file-upload.bad-header",
            Level::Must,
            "a lying prefix, a header that is not JSON or a negative size closes that \
             connection without a crash or a reservation of the claimed size",
            "the server checks what the prefix and the header claim before acting on it: a \
             header length of 2^31-1 is not reserved in memory, a header that is not JSON and \
             a negative size end that connection, and the server serves the next client",
            "read the header in pieces of at most BUF bytes (recv(min(BUF, left))), and refuse \
             a header length above a limit; catch ValueError around json.loads and check that \
             size is an int >= 0, closing that connection and going back to accept",
            Explain {
                why: "The prefix and the header come from the network: a client that lies \
                      about them must not make the server reserve gigabytes or crash, losing \
                      every other client's upload.",
                mistake: "head_len = struct.unpack('i', conn.recv(4))[0]\n\
                          header = json.loads(conn.recv(head_len))  # reserves head_len bytes",
                fix: "if not 0 < head_len <= 65536:\n    conn.close()\n    continue\ntry:\n    \
                      header = json.loads(recv_exactly(conn, head_len))\nexcept ValueError:\n    \
                      conn.close()\n    continue",
            },
            |p| {
                let negative = "{\"size\": -5, \"file_size\": -5, \"filesize\": -5, \
                                \"filename\": \"negative.bin\", \"file_name\": \"negative.bin\"}";
                Conversation::new()
                    .remember_memory()
                    .connect(Conn(1))
                    .send(Conn(1), head(p, 0x7fff_ffff, b"{\"size\": "), Cut::Whole)
                    .settle()
                    .expect_memory_within(RESERVED_AT_MOST_MIB)
                    .release(Conn(1))
                    .restart_if_exited(false)
                    .connect(Conn(2))
                    .send(Conn(2), head(p, 11, b"not json!!!"), Cut::Whole)
                    .settle()
                    .release(Conn(2))
                    .restart_if_exited(false)
                    .connect(Conn(3))
                    .send(
                        Conn(3),
                        head(p, negative.len() as u64, negative.as_bytes()),
                        Cut::Whole,
                    )
                    .settle()
                    .release(Conn(3))
                    .restart_if_exited(false)
                    .list_files()
            },
        )
    }
}

fn one_shot() -> Check {
    check(
        "file-upload.one-shot",
        Level::Info,
        "whether the server exits after one upload",
        "the server keeps serving after an upload (the course server exits after one; the \
         harness starts it again between uploads)",
        "put accept() and the upload's handling in a loop, closing each connection when its \
         upload is stored",
        Explain {
            why: "A server that ends after one upload must be started again by hand for the \
                  next: fine for a first exercise, not for a service.",
            mistake: "conn, addr = server.accept()\n# ... one upload ...\nconn.close()\n\
                      server.close()",
            fix: "while True:\n    conn, addr = server.accept()\n    handle(conn)\n    \
                  conn.close()",
        },
        |p| {
            let body = text();
            upload(
                Conversation::new(),
                p,
                Conn(1),
                "one.bin",
                body.clone(),
                FrameCut::Whole,
            )
            .expect_file("one.bin", body, true, Level::Must)
            .release(Conn(1))
            .restart_if_exited(true)
        },
    )
}
