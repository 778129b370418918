//! Conformance checks (being merged).
use super::procedure::{Ctx, Measurement};
use crate::profile::Step;
pub fn usb(_: &Step, _: &mut Ctx, _: &mut Measurement) -> Result<(), String> {
    Err("pending".into())
}
pub fn serial(_: &Step, _: &mut Ctx, _: &mut Measurement) -> Result<(), String> {
    Err("pending".into())
}
