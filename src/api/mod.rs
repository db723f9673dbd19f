//! Renewal through the Kubernetes certificates API (`signer: api`, `renew --use-api`).

use crate::engine::renew::Signer;
use crate::error::{Error, Result};
use crate::pki::Layout;
use crate::request::ApiOptions;

pub fn signer(_layout: &Layout, _opts: &ApiOptions, _check_mode: bool) -> Result<Box<dyn Signer>> {
    Err(Error::Usage("signer: api is not available yet in this build".into()))
}
