//! The `file-upload` client checks: the harness plays the upload server,
//! gives the client a generated file and stores what arrives.

use sockspec_engine::conversations::check::Check;

pub fn checks() -> Vec<Check> {
    Vec::new()
}
