//! What a model tells the importer about itself.

use burn::module::Module;
use model_zoo::ResNet;
use model_zoo::alexnet::AlexNet;
use model_zoo::vgg::Vgg;

/// A model that can be filled from a torchvision-style state_dict.
///
/// Field names of the zoo's models equal torchvision's keys wherever Burn allows, so most
/// families need no key map at all.
pub trait Importable: Module + Sized {
    /// The family's name for messages (`"resnet"`).
    fn family(&self) -> &'static str;

    /// Key prefixes (torchvision names, with the trailing dot) of the classifier head, which a
    /// partial load may leave as initialised when its shape differs.
    fn classifier_prefixes(&self) -> &'static [&'static str];

    /// `(regex, replacement)` pairs turning torchvision keys into this module's keys. Empty
    /// when the names already agree.
    fn key_map(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

impl Importable for ResNet {
    fn family(&self) -> &'static str {
        "resnet"
    }

    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc."]
    }
}

impl Importable for AlexNet {
    fn family(&self) -> &'static str {
        "alexnet"
    }

    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.6."]
    }
}

impl Importable for Vgg {
    fn family(&self) -> &'static str {
        "vgg"
    }

    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.6."]
    }
}

impl Importable for model_zoo::Model {
    fn family(&self) -> &'static str {
        model_zoo::Model::family(self).name()
    }

    fn classifier_prefixes(&self) -> &'static [&'static str] {
        match self {
            model_zoo::Model::AlexNet(m) => m.classifier_prefixes(),
            model_zoo::Model::ResNet(m) => m.classifier_prefixes(),
            model_zoo::Model::Vgg(m) => m.classifier_prefixes(),
        }
    }

    fn key_map(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            model_zoo::Model::AlexNet(m) => m.key_map(),
            model_zoo::Model::ResNet(m) => m.key_map(),
            model_zoo::Model::Vgg(m) => m.key_map(),
        }
    }
}
