//! One module per subcommand.

pub mod demo;
pub mod normalize;
pub mod receive;
pub mod run;
pub mod validate;
