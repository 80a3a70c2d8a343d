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
        let mut tpm = Self { ctx };
        tpm.flush_left_behind();
        Ok(tpm)
    }

    /// Flushes transient objects a connection left loaded when its process
    /// died mid-command (killed, crashed): without a resource manager the
    /// TPM keeps them, and after a few its object memory is full and every
    /// signature fails. This crate never keeps an object past one
    /// connection, and a TPM serves one connection at a time (behind a
    /// resource manager, such as `/dev/tpmrm0`, it lists only this
    /// connection's, none).
    fn flush_left_behind(&mut self) {
        use tss_esapi::constants::CapabilityType;
        use tss_esapi::constants::tss::TPM2_TRANSIENT_FIRST;
        use tss_esapi::handles::TpmHandle;
        use tss_esapi::structures::CapabilityData;
        let Ok((CapabilityData::Handles(handles), _)) =
            self.ctx
                .get_capability(CapabilityType::Handles, TPM2_TRANSIENT_FIRST, 64)
        else {
            return;
        };
        for handle in handles.iter().copied() {
            if let TpmHandle::Transient(_) = handle
                && let Ok(object) = self.ctx.tr_from_tpm_public(handle)
            {
                match self.ctx.flush_context(object) {
                    Ok(()) => tracing::info!("flushed a key a stopped process left in the TPM"),
                    Err(e) => tracing::warn!(error = %e, "could not flush a key left in the TPM"),
                }
            }
        }
    }
}

/// Maps a TSS error to "the TPM refused to `what`".
pub(crate) fn refused(what: &'static str) -> impl FnOnce(tss_esapi::Error) -> TpmError {
    move |source| TpmError::Refused { what, source }
}
