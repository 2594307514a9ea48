//! The `file-upload` client checks: the harness plays the upload server,
//! gives the client a generated file and stores what arrives.
//!
//! Each check makes a file from a seed in the client's scratch directory
//! before the client starts, names it by `{file}` in the command line and
//! `SOCKSPEC_FILE` (or types its path, when the `file_from` parameter says
//! the client asks for it), accepts the client's connection and reads the
//! prefix, the JSON header and exactly `size` bytes, compared with the file
//! as they arrive: nothing of a 100 MiB upload is held whole.

use sockspec_engine::conversations::check::{Body, Check, Explain};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::judge::expect_frame::{BodySpec, FieldWant, FrameWant, HeaderWant, Md5Want};
use sockspec_engine::model::hint::{Alternative, When};
use sockspec_engine::model::level::Level;
use sockspec_engine::model::profile::{Choice, Profile};

use super::{form, framing, Form, MD5, NAME_KEY, SIZE_KEY};
use crate::checks::{client, BUF};

/// How the client learns which file to upload.
pub const FILE_FROM: Choice = Choice {
    key: "file_from",
    meaning: "how the client is told the file to upload: argument is {file} in its command \
              line (and SOCKSPEC_FILE); stdin is the path typed as a line on its standard \
              input; put is the line `put <path>` typed there",
    options: &["argument", "stdin", "put"],
    default: "argument",
};

/// The spellings of the size's key seen in assignments, accepted by
/// default.
const SIZE_KEYS: &[&str] = &["size", "file_size", "filesize"];
/// The same for the file's name.
const NAME_KEYS: &[&str] = &["filename", "file_name"];

/// The name of the file whose header is judged: not ASCII, so a header
/// length counted in characters is short of its bytes.
const UNICODE_NAME: &str = "回顾.mp4";
/// The name of the files whose content is judged.
const PLAIN_NAME: &str = "upload.bin";

const MIB: u64 = 1024 * 1024;

/// The upload the harness waits for: the profile's prefix, a header with
/// the file's length and name under the keys the profile names (any
/// spelling seen by default), md5 judged when sent (required when the
/// profile says so), then the file's bytes.
fn upload(p: &Profile, name: &str, body: BodySpec) -> FrameWant {
    let keys = |param: &str, all: &[&str]| -> Vec<String> {
        match param {
            "" => all.iter().map(|k| k.to_string()).collect(),
            one => vec![one.to_string()],
        }
    };
    let mut size_keys = keys(p.text(&SIZE_KEY), SIZE_KEYS);
    let size_key = size_keys.remove(0);
    FrameWant {
        framing: framing(p, &size_key),
        body,
        tolerant: false,
        header: HeaderWant {
            other_size_keys: size_keys,
            fields: {
                let mut fields = vec![FieldWant {
                    keys: keys(p.text(&NAME_KEY), NAME_KEYS),
                    value: name.to_string(),
                    what: "the file's name",
                }];
                if form(p) == Form::FtpPut {
                    fields.push(FieldWant {
                        keys: vec!["cmd".to_string()],
                        value: "put".to_string(),
                        what: "the command",
                    });
                }
                fields
            },
            md5: match p.switch(&MD5) {
                true => Md5Want::Required,
                false => Md5Want::WhenSent,
            },
        },
    }
}

/// The content of an upload of `len` bytes: generated from a seed that
/// differs with the length, so no upload is another's start.
fn content(len: u64) -> BodySpec {
    BodySpec::Seeded {
        seed: 0xF11E_0000 ^ len,
        len,
    }
}

/// Tells a client started with a given file which file to upload, as the
/// profile says: nothing more when it is in the command line, its path
/// typed otherwise.
fn tell_file(c: Conversation, p: &Profile) -> Conversation {
    // The FTP skeleton's client takes its files only as `put` commands.
    match (p.choice(&FILE_FROM), form(p)) {
        ("stdin", _) => c.type_file_path(""),
        ("put", _) | (_, Form::FtpPut) => c.type_file_path("put "),
        _ => c,
    }
}

/// What a check judges of the header besides its length and the size:
/// each mistake is blamed by the check about it alone.
#[derive(Clone, Copy)]
struct Judged {
    name: bool,
    md5: bool,
}

/// [`upload`] with only what `judged` says looked at.
fn upload_judged(p: &Profile, name: &str, body: BodySpec, judged: Judged) -> FrameWant {
    let mut want = upload(p, name, body);
    if !judged.name {
        want.header.fields.clear();
    }
    if !judged.md5 {
        want.header.md5 = Md5Want::Ignored;
    }
    want
}

/// The header check judges the name; the md5 check the digest; the others
/// neither.
const HEADER_JUDGED: Judged = Judged {
    name: true,
    md5: false,
};
const MD5_JUDGED: Judged = Judged {
    name: false,
    md5: true,
};
const BYTES_JUDGED: Judged = Judged {
    name: false,
    md5: false,
};

/// One upload on `conn` of the file given to the client as it started.
fn receive(
    c: Conversation,
    p: &Profile,
    conn: Conn,
    name: &str,
    body: BodySpec,
    judged: Judged,
) -> Conversation {
    tell_file(c, p)
        .accept(conn)
        .expect_frame(conn, upload_judged(p, name, body, judged))
        .close(conn)
}

/// Uploads of files of each of `sizes`, the client started again for each.
fn uploads(p: &Profile, name: &str, sizes: &[u64], judged: Judged) -> Conversation {
    let mut c = Conversation::new();
    for (i, &len) in sizes.iter().enumerate() {
        c = match i {
            0 => c.give_file(name, content(len)),
            _ => c.start_client_with(name, content(len)),
        };
        c = receive(c, p, Conn(i as u8 + 1), name, content(len), judged);
    }
    c
}

pub fn checks() -> Vec<Check> {
    vec![header(), content_check(), md5(), slow_reader()]
}

const HEADER_HINTS: &[Alternative] = &[
    Alternative {
        when: When::InDetail("counts characters"),
        text: "the prefix counts the header's characters, not its bytes: with a name such as \
               回顾.mp4 (and ensure_ascii=False) each Chinese character is three bytes in \
               UTF-8; encode the header first and send len(header_bytes)",
    },
    Alternative {
        when: When::InDetail("where it should be the file's name"),
        text: "send the file's name only, not the path it was opened by: \
               os.path.basename(path)",
    },
    Alternative {
        when: When::InDetail("where the body has"),
        text: "the size must be the length in bytes of the file sent: \
               os.path.getsize(path), not the length of its text or of another file",
    },
];

fn header() -> Check {
    Check {
        hints: HEADER_HINTS,
        hint: Some(
            "encode the header first and send the length of its bytes: header_bytes = \
             json.dumps({'filename': os.path.basename(path), 'filesize': \
             os.path.getsize(path)}).encode(); struct.pack('i', len(header_bytes))",
        ),
        explain: Explain {
            why: "The server reads exactly H header bytes and parses them, then reads `size` bytes of content and names the file after the header. A length counted in characters is short of the bytes once the name is not ASCII; a size that is not the file's length in bytes, or a name with the client's folders in it, stores the wrong file.",
            mistake: "header = json.dumps({'filename': name, 'filesize': size}, ensure_ascii=False)\nsock.send(struct.pack('i', len(header)))   # characters, not bytes",
            fix: "header_bytes = json.dumps({'filename': os.path.basename(path), 'filesize': os.path.getsize(path)}).encode('utf-8'); sock.sendall(struct.pack('i', len(header_bytes)) + header_bytes)",
        },
        ..client(
            "file-upload.client.header",
            Level::Must,
            "the prefix counts the header's bytes; size equals the file's length; the filename is the file's name, Unicode included",
            "a client given the file 回顾.mp4 of 1000 bytes sends prefix(H) with H the \
             header's length in bytes, a JSON header whose size (any of size, file_size, \
             filesize, or size_key) is 1000 and whose filename (filename or file_name, or \
             name_key) is 回顾.mp4, then the file's bytes",
            Body::Conversation(|p| uploads(p, UNICODE_NAME, &[1000], HEADER_JUDGED)),
        )
    }
}

const CONTENT_HINTS: &[Alternative] = &[Alternative {
    when: When::InDetail("the body differs at byte"),
    text: "open the file in binary mode ('rb') and send its bytes as they are: reading it \
           as text decodes and changes them",
}];

fn content_check() -> Check {
    Check {
        hints: CONTENT_HINTS,
        hint: Some(
            "after the header send every byte of the file, read in binary mode, with sendall: \
             with open(path, 'rb') as f: while chunk := f.read(BUF): sock.sendall(chunk)",
        ),
        explain: Explain {
            why: "The server stores exactly `size` bytes after the header. Every byte of the file must follow, unchanged, whatever its length: none, one, around the buffer size, or far larger than any buffer.",
            mistake: "with open(path) as f:            # text mode\n    sock.send(f.read().encode())  # decoded and re-encoded, one send",
            fix: "with open(path, 'rb') as f:\n    while chunk := f.read(1024):\n        sock.sendall(chunk)",
        },
        ..client(
            "file-upload.client.content",
            Level::Must,
            "exactly the file's bytes follow the header, for sizes 0 to 100 MiB",
            "files of 0, 1, BUF−1, BUF, BUF+1 bytes, 1 MiB and 100 MiB, each given to the \
             client started afresh, arrive after their header byte for byte, the 100 MiB one \
             compared as it streams",
            Body::Conversation(|p| {
                let buf = p.number(&BUF) as u64;
                let sizes = [0, 1, buf - 1, buf, buf + 1, MIB, 100 * MIB];
                let mut sizes: Vec<u64> = sizes.to_vec();
                sizes.dedup();
                uploads(p, PLAIN_NAME, &sizes, BYTES_JUDGED)
            }),
        )
    }
}

const MD5_HINTS: &[Alternative] = &[Alternative {
    when: When::InDetail("has no \"md5\""),
    text: "this profile asks for md5 in the header: hashlib.md5(content).hexdigest(), \
           computed over the file's bytes as they are read (md5.update(chunk))",
}];

fn md5() -> Check {
    Check {
        hints: MD5_HINTS,
        hint: Some(
            "md5 is the hex digest of exactly the bytes sent: hashlib.md5() updated with each \
             chunk of the file read in binary mode, .hexdigest() (32 hex digits)",
        ),
        explain: Explain {
            why: "A server checks the upload against the md5 the header carries; a digest of anything else (the name, the text, part of the file) makes it reject a good upload.",
            mistake: "header['md5'] = hashlib.md5(name.encode()).hexdigest()   # the name's digest",
            fix: "m = hashlib.md5()\nfor chunk in iter(lambda: f.read(65536), b''): m.update(chunk)\nheader['md5'] = m.hexdigest()",
        },
        ..client(
            "file-upload.client.md5",
            Level::Must,
            "when md5 is sent it matches the content",
            "a client given a file of 64 KiB sends it; the header's md5, when sent (always \
             with --param md5=yes), is the MD5 of the bytes that follow",
            Body::Conversation(|p| uploads(p, PLAIN_NAME, &[64 * 1024], MD5_JUDGED)),
        )
    }
}

const SLOW_HINTS: &[Alternative] = &[Alternative {
    when: When::InDetail("timed out"),
    text: "with a socket timeout set (settimeout), a send that waits for a slow server \
           raises socket.timeout: catch it and try again, or set no timeout for the upload",
}];

fn slow_reader() -> Check {
    Check {
        hints: SLOW_HINTS,
        hint: Some(
            "use sendall, or loop on the count send returns: sent = sock.send(data); data = \
             data[sent:] until nothing is left. With a socket timeout set, one send takes only \
             what fits in the buffer",
        ),
        explain: Explain {
            why: "send returns how many bytes it took. A blocking socket without a timeout takes everything on Linux, but with a timeout set (settimeout) the socket is non-blocking underneath and send takes only what fits: against a server that reads slowly, the rest is lost unless the count is honoured.",
            mistake: "sock.settimeout(0.5)\nwhile chunk := f.read(65536):\n    sock.send(chunk)     # may take part of it",
            fix: "while chunk := f.read(65536):\n    sock.sendall(chunk)",
        },
        ..client(
            "file-upload.client.slow-reader",
            Level::Must,
            "nothing is lost when the server reads slowly through a small buffer (a send whose count is ignored loses data)",
            "a file of 2 MiB arrives whole while the harness reads it slowly through the \
             smallest receive buffer the kernel allows",
            Body::Conversation(|p| {
                let c = Conversation::new().give_file(PLAIN_NAME, content(2 * MIB));
                tell_file(c, p)
                    .accept(Conn(1))
                    .expect_frame_slowly(
                        Conn(1),
                        upload_judged(p, PLAIN_NAME, content(2 * MIB), BYTES_JUDGED),
                    )
                    .close(Conn(1))
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_client_check_is_here_at_its_level() {
        let ids: Vec<(&str, Level)> = checks().iter().map(|c| (c.id.as_str(), c.level)).collect();
        assert_eq!(
            ids,
            [
                ("file-upload.client.header", Level::Must),
                ("file-upload.client.content", Level::Must),
                ("file-upload.client.md5", Level::Must),
                ("file-upload.client.slow-reader", Level::Must),
            ]
        );
    }
}
