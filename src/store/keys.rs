//! Purpose: the layout of the store's keys: one ASCII path prefix per kind of record, private to the store.

pub(super) fn delivery(guid: &str) -> String {
    format!("d/{guid}")
}
/// A delivery's raw body, kept apart from its record: stored once as GitHub signed it (never escaped into JSON), and
/// never rewritten when the record's processing marks change.
pub(super) fn delivery_body(guid: &str) -> String {
    format!("db/{guid}")
}
/// Where a delivery's raw body is in the delivery log of an embedded store ([`super::delivery_log`]).
pub(super) fn delivery_body_at(guid: &str) -> String {
    format!("dl/{guid}")
}
pub(super) const DELIVERY_BODY_AT: &str = "dl/";
pub(super) const PENDING: &str = "dp/";
pub(super) fn pending(seq: u64, guid: &str) -> String {
    format!("dp/{seq:020}/{guid}")
}
pub(super) fn job(id: &str) -> String {
    format!("j/{id}")
}
pub(super) const JOBS: &str = "j/";
pub(super) fn events(id: &str) -> String {
    format!("e/{id}/")
}
pub(super) fn event(id: &str, seq: u64) -> String {
    format!("e/{id}/{seq:010}")
}
pub(super) const ACTIVE: &str = "a/";
pub(super) fn active(id: &str) -> String {
    format!("a/{id}")
}
pub(super) fn outbox_prefix(installation: u64) -> String {
    format!("o/{installation:020}/")
}
pub(super) const OUTBOX: &str = "o/";
pub(super) fn outbox(installation: u64, seq: u64) -> String {
    format!("o/{installation:020}/{seq:020}")
}
pub(super) fn coalesce(k: &str) -> String {
    format!("oc/{k}")
}
pub(super) fn index(name: &str, k: &str) -> String {
    format!("x/{name}/{k}")
}
pub(super) fn meta(name: &str) -> String {
    format!("m/{name}")
}
