//! [`Family`]: a family's name, declared by each family's module ([`Family::RESNET`] in
//! [`crate::resnet`]). Its own module, below both the registry and the [`crate::Architecture`]
//! trait that name it, so that neither imports the other through it.

use std::fmt;

/// A family of architectures, named as in messages and `zoo-train list` (`"resnet"`). Each
/// family declares its constant in its own module ([`Family::RESNET`] in [`crate::resnet`]), so
/// adding a family touches no list here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Family {
    name: &'static str,
}

impl Family {
    /// A family called `name` (the zoo's own are constants such as [`Family::RESNET`]; a
    /// model defined outside the zoo names its own).
    pub const fn new(name: &'static str) -> Self {
        Self { name }
    }

    /// The family's name, as used in messages (`"resnet"`).
    pub fn name(self) -> &'static str {
        self.name
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
