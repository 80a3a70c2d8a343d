//! The JSON bodies the cloud accepts from parents and watches: decoding
//! never panics, and what decodes encodes back to an equal value; the
//! family's roster updates and approval messages are checked as the cloud
//! checks them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use waymark_protocol::account::{Rename, Settings};
use waymark_protocol::approval::{ApprovalAnswer, ApprovalOffer, NewJoinRequest, SealedApproval};
use waymark_protocol::co_parents::{InvitationCode, InvitationCodeBody, NewInvitation, RoleChange};
use waymark_protocol::pairing::PairingAnswer;
use waymark_protocol::roster::RosterUpdate;
use waymark_protocol::watches::RevokeRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<Rename>(data) {
        let _ = waymark_protocol::account::clean_name(&v.name);
    }
    if let Ok(v) = serde_json::from_slice::<Settings>(data) {
        let back: Settings = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back.retention_days, v.retention_days);
    }
    if let Ok(v) = serde_json::from_slice::<PairingAnswer>(data) {
        let _ = v.is_well_formed();
    }
    let _ = serde_json::from_slice::<RevokeRequest>(data);
    // The family's keys as the cloud takes them: the checks it runs on an
    // empty chain never panic, and a roster nobody signed is never taken.
    if let Ok(update) = serde_json::from_slice::<RosterUpdate>(data) {
        assert!(update.check(&[], 0).is_err(), "an unsigned founding was taken");
        let _ = update.roster.roster.check_shape();
    }
    let _ = serde_json::from_slice::<NewJoinRequest>(data);
    if let Ok(v) = serde_json::from_slice::<ApprovalOffer>(data) {
        let _ = v.is_well_formed();
    }
    if let Ok(v) = serde_json::from_slice::<ApprovalAnswer>(data) {
        let _ = v.is_well_formed();
    }
    if let Ok(v) = serde_json::from_slice::<SealedApproval>(data) {
        let _ = v.is_well_formed();
    }
    // Co-parents: a role is one of two, and an invitation code that parses
    // shows and parses back to the same code (the cloud looks it up by hash).
    if let Ok(v) = serde_json::from_slice::<NewInvitation>(data) {
        let back: NewInvitation = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
    }
    let _ = serde_json::from_slice::<RoleChange>(data);
    if let Ok(v) = serde_json::from_slice::<InvitationCodeBody>(data)
        && let Some(code) = InvitationCode::parse(&v.code)
    {
        let shown = InvitationCode::parse(&code.display()).unwrap();
        assert_eq!(shown.lookup_hash(), code.lookup_hash());
        assert_eq!(InvitationCode::parse(&code.link()).unwrap(), code);
    }
});
