//! The cloud's shared state, handed to every handler: the store, the
//! passkey relying party, the trusted manufacturer CAs, the live bus, the
//! verified-certificate cache and the open-stream counts. Time comes
//! from the store's clock (`store.now()`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::live_bus::LiveBus;
use crate::storage::Store;
use crate::streams::StreamCounts;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub webauthn: Arc<Webauthn>,
    /// The origin browsers see; its host is the relying-party ID.
    pub origin: Url,
    /// Manufacturer CA certificates (DER) that device certificates must chain to.
    pub manufacturers: Arc<Vec<Vec<u8>>>,
    /// Accept only watches whose certificate says their key is in a TPM.
    pub require_hardware_keys: bool,
    /// Stored batches and setups, published after their commit, for live streams.
    pub live: LiveBus,
    /// Device certificates already verified against a manufacturer CA (at
    /// pairing, or at a watch's first upload), by device id.
    pub device_certificates: DeviceCertificates,
    /// Which setups each device has posted (see [`KnownSetups`]).
    pub known_setups: KnownSetups,
    /// Open history and live streams per account (capped).
    pub streams: StreamCounts,
}

/// Certificates of devices whose chain to a manufacturer CA was verified.
/// A certificate never changes for an id (the id is its key's hash);
/// revocation is still checked in the database on every upload.
#[derive(Clone, Default)]
pub struct DeviceCertificates(Arc<RwLock<HashMap<String, Arc<[u8]>>>>);

/// Bounded: a full cache starts over rather than grow without end.
const MAX_CACHED_DEVICES: usize = 2_000_000;

impl DeviceCertificates {
    pub fn get(&self, device_id: &str) -> Option<Arc<[u8]>> {
        self.0.read().ok()?.get(device_id).cloned()
    }

    pub fn insert(&self, device_id: &str, certificate: &[u8]) {
        if let Ok(mut cache) = self.0.write() {
            if cache.len() >= MAX_CACHED_DEVICES {
                cache.clear();
            }
            cache.insert(device_id.to_owned(), certificate.into());
        }
    }
}

/// The setups each device has posted, by device id: asked on every batch,
/// so a batch naming a setup the cloud never got is refused without a
/// database read once its setup is known (and without an allocation per
/// lookup). Entries are never wrong: a setup, once stored, stays as long as
/// the device's batches.
#[derive(Clone, Default)]
pub struct KnownSetups(Arc<RwLock<HashMap<String, Vec<[u8; 16]>>>>);

impl KnownSetups {
    pub fn contains(&self, device_id: &str, setup_id: &[u8; 16]) -> bool {
        self.0
            .read()
            .is_ok_and(|known| known.get(device_id).is_some_and(|s| s.contains(setup_id)))
    }

    pub fn insert(&self, device_id: &str, setup_id: [u8; 16]) {
        if let Ok(mut known) = self.0.write() {
            if known.len() >= MAX_CACHED_DEVICES {
                known.clear();
            }
            let setups = known.entry(device_id.to_owned()).or_default();
            if !setups.contains(&setup_id) {
                // A watch makes one a start: keep the newest few.
                if setups.len() >= 8 {
                    setups.remove(0);
                }
                setups.push(setup_id);
            }
        }
    }
}

impl AppState {
    pub fn new(store: Store, origin: Url, manufacturers: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        let rp_id = origin.host_str().context("origin has no host")?.to_owned();
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .context("the origin cannot be a WebAuthn relying party")?
            .rp_name("Waymark")
            .build()
            .context("cannot build the WebAuthn relying party")?;
        Ok(Self {
            live: LiveBus::new(store.engine()),
            store,
            webauthn: Arc::new(webauthn),
            origin,
            manufacturers: Arc::new(manufacturers),
            require_hardware_keys: false,
            device_certificates: DeviceCertificates::default(),
            known_setups: KnownSetups::default(),
            streams: StreamCounts::default(),
        })
    }

    /// `https://host:port` with no trailing slash, as browsers send in `Origin`.
    pub fn origin_str(&self) -> String {
        self.origin.origin().ascii_serialization()
    }
}
