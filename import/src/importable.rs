//! What a model tells the importer about itself.

use burn::module::Module;
use model_zoo::ResNet;
use model_zoo::alexnet::AlexNet;
use model_zoo::googlenet::{GoogLeNet, GoogLeNetCifar};
use model_zoo::lenet::LeNet5;
use model_zoo::vgg::Vgg;

/// Calls the same method on whichever model a [`model_zoo::Model`] holds.
macro_rules! dispatch {
    ($self:expr, $model:ident => $body:expr) => {
        match $self {
            model_zoo::Model::AlexNet($model) => $body,
            model_zoo::Model::GoogLeNet($model) => $body,
            model_zoo::Model::GoogLeNetCifar($model) => $body,
            model_zoo::Model::LeNet5($model) => $body,
            model_zoo::Model::ResNet($model) => $body,
            model_zoo::Model::Vgg($model) => $body,
        }
    };
}

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

    /// Key prefixes (with the trailing dot) of parts a file may hold that this model was built
    /// without, such as GoogLeNet's aux heads: their keys are ignored, not unexpected.
    fn optional_prefixes(&self) -> &'static [&'static str] {
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

impl Importable for GoogLeNet {
    fn family(&self) -> &'static str {
        "googlenet"
    }

    fn classifier_prefixes(&self) -> &'static [&'static str] {
        if self.has_aux_logits() {
            &["fc.", "aux1.fc2.", "aux2.fc2."]
        } else {
            &["fc."]
        }
    }

    /// torchvision's weight file holds the aux heads; a model built without them loads it as
    /// torchvision's builder does, leaving them out.
    fn optional_prefixes(&self) -> &'static [&'static str] {
        if self.has_aux_logits() {
            &[]
        } else {
            &["aux1.", "aux2."]
        }
    }
}

impl Importable for GoogLeNetCifar {
    fn family(&self) -> &'static str {
        "googlenet"
    }

    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc."]
    }
}

impl Importable for LeNet5 {
    fn family(&self) -> &'static str {
        "lenet"
    }

    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc3."]
    }
}

impl Importable for model_zoo::Model {
    fn family(&self) -> &'static str {
        model_zoo::Model::family(self).name()
    }

    fn classifier_prefixes(&self) -> &'static [&'static str] {
        dispatch!(self, m => m.classifier_prefixes())
    }

    fn key_map(&self) -> &'static [(&'static str, &'static str)] {
        dispatch!(self, m => m.key_map())
    }

    fn optional_prefixes(&self) -> &'static [&'static str] {
        dispatch!(self, m => m.optional_prefixes())
    }
}
