//! `sockspec serve` and `sockspec connect`: a reference server to test a
//! client against, and a reference client to test a server against.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Args;
use sockspec_engine::model::exit;
use sockspec_reference::prefix::Prefix;

use crate::{suggest, usage};

/// What both a reference server and a reference client are told.
#[derive(Args)]
pub struct Common {
    /// Most bytes read in one receive.
    #[arg(long, default_value_t = 1024)]
    buf: usize,
    /// How cmd-len and cmd-json write a length: i32le, i32be, u32le,
    /// u32be, i64le or i64be; or, for cmd-len, decimal: the digits
    /// alone, the output once the client answers.
    #[arg(long, default_value = "i32le", value_parser = parse_prefix)]
    prefix: Prefix,
    /// The JSON header's name for the body's size (cmd-json).
    #[arg(long, default_value = "size")]
    size_key: String,
}

impl Common {
    fn options(self) -> sockspec_reference::Options {
        sockspec_reference::Options {
            buf: self.buf,
            prefix: self.prefix,
            size_key: self.size_key,
            ..sockspec_reference::Options::default()
        }
    }
}

#[derive(Args)]
pub struct ServeArgs {
    /// The protocol to serve: one listed below.
    suite: String,
    /// The port to listen on.
    #[arg(long)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: Ipv4Addr,
    /// The folder file-upload stores uploads in.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// The protocol to speak: one listed below.
    suite: String,
    /// The port of the server.
    #[arg(long)]
    port: u16,
    /// The address of the server.
    #[arg(long, default_value = "127.0.0.1")]
    host: Ipv4Addr,
    /// The file to upload (file-upload), such as the harness's `{file}`.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Send the content's MD5 in the header (file-upload).
    #[arg(long)]
    md5: bool,
    #[command(flatten)]
    common: Common,
}

fn parse_prefix(name: &str) -> Result<Prefix, String> {
    Prefix::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Prefix::ALL.iter().map(|(_, n)| *n).collect();
        format!(
            "{name:?} is not a prefix format; use one of {}",
            names.join(", ")
        )
    })
}

/// `title`, then one paragraph per `(suite, text)`, wrapped to fit a
/// terminal.
fn listing<'a>(title: &str, entries: impl Iterator<Item = (&'a str, String)>) -> String {
    const WIDTH: usize = 79;
    let entries: Vec<(&str, String)> = entries.collect();
    // The names' column is as wide as the longest name, and at least 10.
    let name_width = entries
        .iter()
        .map(|(s, _)| s.len())
        .max()
        .unwrap_or(0)
        .max(10);
    let indent = name_width + 5;
    let mut help = String::from(title);
    for (suite, text) in entries {
        let mut line = format!("  {suite:<name_width$}");
        for word in text.split(' ') {
            if line.len() + 1 + word.len() > WIDTH {
                help.push('\n');
                help.push_str(&line);
                line = " ".repeat(indent - 1);
            }
            line.push(' ');
            line.push_str(word);
        }
        help.push('\n');
        help.push_str(&line);
    }
    help
}

/// The protocols `sockspec serve` knows, one a paragraph, with what each
/// needs said beyond its protocol (the chat's replies come from standard
/// input).
pub fn serve_help() -> String {
    listing(
        "Reference servers:",
        sockspec_reference::SERVERS.iter().map(|r| {
            let text = match r.note {
                Some(note) => format!("{}: {note}", r.transport),
                None => r.transport.to_string(),
            };
            (r.suite, text)
        }),
    )
}

/// The protocols `sockspec connect` knows, one a paragraph, with what
/// each does with its input and the answers.
pub fn connect_help() -> String {
    listing(
        "Reference clients:",
        sockspec_reference::CLIENTS
            .iter()
            .map(|r| (r.suite, format!("TCP: {}", r.note)))
            .chain([("file-upload", UPLOAD_NOTE.to_string())]),
    )
}

/// What the upload client does, for `connect --help`.
const UPLOAD_NOTE: &str = "TCP: uploads --file as a length prefix (--prefix), a JSON header \
                           with its name (filename) and size (--size-key, default size; md5 \
                           with --md5), then its bytes, and ends; no standard input";

/// A usage error for a protocol with no reference of the `kind` asked
/// (`server`, `client`) among `available`.
fn no_reference(suite: &str, kind: &str, command: &str, available: &[&str]) -> i32 {
    if sockspec_suites::find(suite).is_some() {
        return usage(&format!(
            "no reference {kind} for {suite} yet; the reference {kind}s are: {}",
            available.join(", ")
        ));
    }
    let guess = match suggest::closest(suite, available, 1).first() {
        Some(near) if suggest::distance(suite, near) <= 3 => format!("did you mean {near}? "),
        _ => String::new(),
    };
    usage(&format!(
        "no protocol named {suite:?}; {guess}the reference {kind}s are: {} \
         (see `sockspec {command} --help`)",
        available.join(", ")
    ))
}

pub fn serve(args: ServeArgs) -> i32 {
    let ServeArgs {
        suite,
        port,
        host,
        dir,
        common,
    } = args;
    let Some(reference) = sockspec_reference::find(&suite) else {
        let available: Vec<&str> = sockspec_reference::SERVERS
            .iter()
            .map(|r| r.suite)
            .collect();
        return no_reference(&suite, "server", "serve", &available);
    };
    // Only cmd-len answers a length in decimal digits.
    if common.prefix == Prefix::Decimal && suite != "cmd-len" {
        return usage(&format!(
            "--prefix decimal is cmd-len's alone; {suite} writes a binary length (i32le, i32be, \
             u32le, u32be, i64le or i64be)"
        ));
    }
    let options = sockspec_reference::Options {
        dir,
        ..common.options()
    };
    let buf = options.buf;
    let server = match (reference.bind)(host, port, &options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: could not bind {host}:{port}: {e}; choose another --port");
            return exit::TARGET_FAILED;
        }
    };
    eprintln!(
        "sockspec serve: {suite} reference server on {host}:{port} ({}, buf {buf}); Ctrl-C stops it",
        reference.transport
    );
    if let Some(note) = reference.note {
        eprintln!("sockspec serve: {note}");
    }
    match server.serve() {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: the server stopped: {e}");
            exit::HARNESS_ERROR
        }
    }
}

/// `sockspec connect`: the reference client of a protocol, its commands
/// from standard input and the answers to standard output, until the end
/// of the input (status 0). A server that cannot be reached is status 3;
/// one that breaks off or garbles an answer, 1.
pub fn connect(args: ConnectArgs) -> i32 {
    let ConnectArgs {
        suite,
        port,
        host,
        file,
        md5,
        common,
    } = args;
    if suite == "file-upload" {
        return upload(host, port, file, md5, common);
    }
    if file.is_some() || md5 {
        return usage(&format!(
            "--file and --md5 are file-upload's; {suite}'s client reads commands from its \
             standard input"
        ));
    }
    let Some(reference) = sockspec_reference::find_client(&suite) else {
        let available: Vec<&str> = sockspec_reference::CLIENTS
            .iter()
            .map(|r| r.suite)
            .collect();
        return no_reference(&suite, "client", "connect", &available);
    };
    let client = match (reference.connect)(host, port, &common.options()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: could not connect to {host}:{port}: {e}; is the server running?");
            return exit::TARGET_FAILED;
        }
    };
    let mut input = io::stdin().lock();
    let mut out = io::BufWriter::with_capacity(sockspec_reference::client::CHUNK, io::stdout());
    match client.run(&mut input, &mut out).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::CHECK_FAILED
        }
    }
}

/// `sockspec connect file-upload`: one upload of `--file`, status 0 once
/// it is sent whole.
fn upload(host: Ipv4Addr, port: u16, file: Option<PathBuf>, md5: bool, common: Common) -> i32 {
    let Some(path) = file else {
        return usage("connect file-upload needs --file PATH: the file to upload");
    };
    if common.prefix == Prefix::Decimal {
        return usage("--prefix decimal is cmd-len's alone; file-upload writes a binary length");
    }
    let upload = sockspec_reference::file_upload::Upload {
        prefix: common.prefix,
        size_key: common.size_key,
        md5,
        ..Default::default()
    };
    match sockspec_reference::file_upload::run_client(host, port, &path, &upload) {
        Ok(_) => exit::OK,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            eprintln!("error: could not connect to {host}:{port}: {e}; is the server running?");
            exit::TARGET_FAILED
        }
        Err(e) => {
            eprintln!("error: uploading {}: {e}", path.display());
            exit::CHECK_FAILED
        }
    }
}
