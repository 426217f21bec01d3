//! (being written)
use crate::{Error, Network};
use std::path::Path;
/// Saves a network.
pub fn save<N: Network>(_net: &N, path: &Path) -> Result<(), Error> {
    Err(Error::invalid(format!("{}: saving is being written", path.display())))
}
/// Loads a network.
pub fn load<N: Network>(_net: &mut N, path: &Path) -> Result<(), Error> {
    Err(Error::invalid(format!("{}: loading is being written", path.display())))
}
