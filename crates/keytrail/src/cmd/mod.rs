//! One module per subcommand.

pub mod normalize;
pub mod validate;
