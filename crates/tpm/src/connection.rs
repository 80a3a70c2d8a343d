//! One open connection to a TPM, named by a TCTI string such as
//! `swtpm:host=127.0.0.1,port=2321` or `device:/dev/tpmrm0`.

use std::str::FromStr;

use tss_esapi::Context;
use tss_esapi::tcti_ldr::TctiNameConf;

/// Why a TPM operation failed, said for a person.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error("cannot reach the TPM at {tcti}: {source} (is it running, and is --tcti right?)")]
    Unreachable {
        tcti: String,
        source: tss_esapi::Error,
    },
    #[error("the TPM refused to {what}: {source}")]
    Refused {
        what: &'static str,
        source: tss_esapi::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A TPM session-less connection; every command goes through it in turn.
pub struct Tpm {
    pub(crate) ctx: Context,
}

impl Tpm {
    /// Connects and asks the TPM for a random byte, so an unreachable or
    /// unstarted TPM is reported here rather than at the first signature.
    pub fn open(tcti: &str) -> Result<Self, TpmError> {
        let unreachable = |source| TpmError::Unreachable {
            tcti: tcti.to_owned(),
            source,
        };
        let conf = TctiNameConf::from_str(tcti).map_err(unreachable)?;
        let mut ctx = Context::new(conf).map_err(unreachable)?;
        ctx.get_random(1).map_err(unreachable)?;
        Ok(Self { ctx })
    }
}

/// Maps a TSS error to "the TPM refused to `what`".
pub(crate) fn refused(what: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Refused { what, source }
}
