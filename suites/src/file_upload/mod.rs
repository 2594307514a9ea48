//! `file-upload`: a client uploads one file over TCP as `prefix(H)`, a
//! JSON header of H bytes with the file's name and size, then exactly
//! `size` bytes of content; the server stores it in its working directory.
//!
//! The server checks ([`server`]) upload generated files and read back
//! what the server stored; the client checks ([`client`]) play the upload
//! server, give the client a generated file and store what arrives. The
//! header's shape is a parameter: real assignments spell its keys
//! differently and some frame it differently.

use sockspec_engine::conversations::check::{Suite, Wire};
use sockspec_engine::judge::expect_frame::Framing;
use sockspec_engine::model::profile::{Choice, ParamSpec, Profile, Switch, Text};
use sockspec_engine::Transport;

use crate::checks::BUF;
use crate::commands::{prefix, PREFIX};

pub mod client;
pub mod server;

/// The header's name for the file's length. By default the harness sends
/// every spelling seen in assignments and accepts any one of them.
pub const SIZE_KEY: Text = Text {
    key: "size_key",
    meaning: "the header's name for the file's length (size, file_size and filesize are \
              seen in assignments; by default all three are sent and any is accepted)",
    default: "",
    shown_default: "any of size, file_size, filesize",
    refuse_empty: None,
};

/// The header's name for the file's name. By default the harness sends
/// every spelling seen in assignments and accepts any one of them.
pub const NAME_KEY: Text = Text {
    key: "name_key",
    meaning: "the header's name for the file's name (filename and file_name are seen in \
              assignments; by default both are sent and either is accepted)",
    default: "",
    shown_default: "any of filename, file_name",
    refuse_empty: None,
};

/// Whether the header carries the content's MD5, and the checks hold it.
pub const MD5: Switch = Switch {
    key: "md5",
    meaning: "the header carries md5, 32 hex digits of the content's MD5 digest",
    default: false,
};

/// How the header travels: the reference's length-prefixed JSON, or a
/// variant found in course code.
pub const HEADER: Choice = Choice {
    key: "header",
    meaning: "how the header is framed: prefixed is prefix(H) then H bytes of JSON; \
              ftp-put adds \"cmd\": \"put\" and a target folder; bare-json is the JSON alone, \
              read with one receive; bare-json-200 is that with a 200 answer before the body; \
              struct is struct.pack('128sl', name, size), 136 bytes",
    options: &[
        "prefixed",
        "ftp-put",
        "bare-json",
        "bare-json-200",
        "struct",
    ],
    default: "prefixed",
};

/// How a profile's upload travels, from its `header` parameter: the one
/// place the suite's checks learn it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Form {
    /// `prefix(H)` then H bytes of JSON.
    Prefixed,
    /// The course's FTP skeleton: the prefixed header also says
    /// `"cmd": "put"`, the client is told its file as the command line
    /// `put <path>`, and the server stores it in [`FTP_FOLDER`].
    FtpPut,
    /// The JSON alone, read with one receive; `ready` when the receiver
    /// answers `200` before the body.
    BareJson { ready: bool },
    /// `struct.pack('128sl', name, size)`: 136 bytes.
    Struct,
}

/// The folder, in the server's own, where the course's FTP skeleton
/// stores what is put.
pub const FTP_FOLDER: &str = "file_upload";

/// The form `p` asks for.
pub fn form(p: &Profile) -> Form {
    match p.choice(&HEADER) {
        "ftp-put" => Form::FtpPut,
        "bare-json" => Form::BareJson { ready: false },
        "bare-json-200" => Form::BareJson { ready: true },
        "struct" => Form::Struct,
        _ => Form::Prefixed,
    }
}

/// The answer a bare JSON header waits for before the body.
const READY: &[u8] = b"200";

/// How `p`'s upload is framed, its size under `size_key` where the header
/// has keys.
pub fn framing(p: &Profile, size_key: &str) -> Framing {
    match form(p) {
        Form::Prefixed | Form::FtpPut => Framing::JsonHeader {
            prefix: prefix(p),
            size_key: size_key.to_string(),
        },
        Form::BareJson { ready } => Framing::BareJson {
            size_key: size_key.to_string(),
            ready: ready.then(|| READY.to_vec()),
        },
        Form::Struct => Framing::Struct128sl,
    }
}

/// Where a server of form `p` stores the upload named `name`, relative to
/// its folder.
pub fn stored_as(p: &Profile, name: &str) -> String {
    match form(p) {
        Form::FtpPut => format!("{FTP_FOLDER}/{name}"),
        _ => name.to_string(),
    }
}

pub fn suite() -> Suite {
    Suite {
        name: "file-upload",
        transport: Transport::Stream,
        summary: "file upload over TCP: a length-prefixed JSON header with the file's name and size, then its bytes",
        wire: Wire {
            server: "Listen on TCP; for each connection read the prefix and then exactly H \
                     header bytes (looping), parse the JSON header, then loop until `size` \
                     bytes of content are in, writing them to a file named after the header's \
                     filename (its last path component) in the working directory. Serve the \
                     next client.",
            client: "Send prefix(H), H bytes of a UTF-8 JSON header with the file's name and \
                     size (and md5 if asked), then exactly the file's bytes; close.",
        },
        sanity: server::sanity,
        params: &[
            ParamSpec::Choice(&HEADER),
            ParamSpec::Choice(&PREFIX),
            ParamSpec::Text(&SIZE_KEY),
            ParamSpec::Text(&NAME_KEY),
            ParamSpec::Switch(&MD5),
            ParamSpec::Number(&BUF),
            ParamSpec::Number(&server::LARGEST),
            ParamSpec::Choice(&client::FILE_FROM),
        ],
        checks: server::checks().into_iter().chain(client::checks()).collect(),
    }
}
