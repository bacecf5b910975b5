//! [`Numbered`]: a list of modules whose keys are numbered names (`denselayer1`, `block2-0`),
//! as torchvision builds them with `add_module(f"name{i}", ...)`.

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::tensor::Device;

/// Modules named `{prefix}{start}`, `{prefix}{start + 1}`, ... in state_dict keys: DenseNet's
/// `denselayer1..`, RegNet's `block1..` stages and their `block1-0..` blocks.
///
/// Burn's `Vec<T>` names its items `0, 1, ...`, and its derive takes names from field names, so
/// neither gives these keys; a key map on import would leave every other key path (saving,
/// error messages, `torch_shapes`) in a spelling torchvision does not have. This is `Vec<T>`'s
/// `Module` implementation with the names changed, nothing else.
#[derive(Debug, Clone)]
pub struct Numbered<T> {
    /// The name before each number (`"denselayer"`, `"block2-"`).
    pub prefix: String,
    /// The first item's number (1 for DenseNet's layers, 0 for RegNet's blocks).
    pub start: usize,
    /// The modules, in order.
    pub items: Vec<T>,
}

impl<T> Numbered<T> {
    /// `items` named `{prefix}{start}` onwards.
    pub fn new(prefix: impl Into<String>, start: usize, items: Vec<T>) -> Self {
        Self {
            prefix: prefix.into(),
            start,
            items,
        }
    }

    /// The key of item `index`.
    pub fn name(&self, index: usize) -> String {
        format!("{}{}", self.prefix, self.start + index)
    }

    /// The modules, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn map_items(self, f: impl FnMut(T) -> T) -> Self {
        let items = self.items.into_iter().map(f).collect();
        Self { items, ..self }
    }
}

const CONTAINER: &str = "Numbered";

impl<T: Module> Module for Numbered<T> {
    fn collect_devices(&self, mut devices: Devices) -> Devices {
        for module in &self.items {
            devices = module.collect_devices(devices);
        }
        devices
    }

    fn fork(self, device: &Device) -> Self {
        self.map_items(|m| m.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        self.map_items(|m| m.to_device(device))
    }

    fn train(self) -> Self {
        self.map_items(Module::train)
    }

    fn valid(&self) -> Self {
        Self {
            prefix: self.prefix.clone(),
            start: self.start,
            items: self.items.iter().map(Module::valid).collect(),
        }
    }

    fn materialize(self) -> Self {
        self.map_items(Module::materialize)
    }

    fn num_params(&self) -> usize {
        self.items.iter().map(Module::num_params).sum()
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        for (i, module) in self.items.iter().enumerate() {
            let name = self.name(i);
            visitor.enter_module(&name, CONTAINER);
            module.visit(visitor);
            visitor.exit_module(&name, CONTAINER);
        }
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let names: Vec<String> = (0..self.items.len()).map(|i| self.name(i)).collect();
        let Numbered {
            prefix,
            start,
            items,
        } = self;
        let items = items
            .into_iter()
            .zip(&names)
            .map(|(module, name)| {
                mapper.enter_module(name, CONTAINER);
                let mapped = module.map(mapper);
                mapper.exit_module(name, CONTAINER);
                mapped
            })
            .collect();
        Numbered {
            prefix,
            start,
            items,
        }
    }
}

impl<T: ModuleDisplay> ModuleDisplayDefault for Numbered<T> {
    fn content(&self, content: Content) -> Option<Content> {
        self.items
            .iter()
            .enumerate()
            .fold(content, |acc, (i, module)| acc.add(&self.name(i), module))
            .set_top_level_type(&format!("Numbered<{}..>", self.prefix))
            .optional()
    }
}

impl<T: ModuleDisplay> ModuleDisplay for Numbered<T> {}
