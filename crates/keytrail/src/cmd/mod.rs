//! One module per subcommand.

pub mod normalize;
pub mod run;
pub mod validate;
