//! Turning what exists elsewhere into thoth's own: a tenant into configuration (`export`),
//! and a Terraform state written with the `atensecurity/thoth` provider into a thoth state
//! (`terraform`). It never writes to the tenant; the commands write the files.

pub mod export;
pub mod hcl;
pub mod terraform;
