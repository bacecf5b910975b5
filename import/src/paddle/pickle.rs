//! A pickle reader for `paddle.save` files that executes nothing.
//!
//! `paddle.save(state_dict)` pickles a dict of numpy arrays. Reading it means interpreting the
//! pickle's opcodes, and a pickle may name any Python callable (`os.system`) in a `GLOBAL` and
//! call it with `REDUCE`. This reader knows only the callables numpy's and Paddle's own
//! pickling uses, each by its exact module and name, and evaluates them itself; any other global
//! is refused with its name, before anything is built from it.
//!
//! Why not a crate: `serde-pickle` can keep unknown globals (`replace_unresolved_globals`,
//! `keep_restore_state`) but shares memoised objects by value, so a dtype built once and
//! referenced by every later array loses its `BUILD` state (its byte order) after the first
//! array; `repugnant-pickle` has the same by-value memo and is unmaintained; burn-store's reader
//! turns numpy arrays into opaque objects and reports no tensors. Here the memo shares objects as
//! Python's does.
//!
//! Supported: protocols 2 to 5 (the binary opcodes; `FRAME` included), arrays of `f2`, `f4`,
//! `f8` (read as f32) and integer dtypes (refused by the caller with their name), in C or
//! Fortran order, little- or big-endian, their bytes given as `bytes` (protocol 3+) or as
//! `_codecs.encode(str, 'latin1')` (protocol 2).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Why a pickle could not be read. `Forbidden` is a refusal: the file names a global outside
/// the allow-list, and nothing was executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickleError {
    /// The pickle names a global that is not a numpy array constructor.
    Forbidden(String),
    /// Truncated, corrupt, or a construct this reader does not handle.
    Malformed(String),
}

/// A numpy array as the pickle describes it, its bytes still in the file's byte order.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// numpy's dtype code: `f4`, `f2`, `i8`, ...
    pub dtype: String,
    /// Whether the dtype is big-endian (`>`).
    pub big_endian: bool,
    /// Whether the bytes are in Fortran (column-major) order.
    pub fortran: bool,
    /// The raw element bytes.
    pub data: Vec<u8>,
}

/// One value of the top-level dict.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A numpy array.
    Array(NdArray),
    /// `UnpackBigParamInfor@@`'s description of one split array (keyed by the array's own key):
    /// its shape and its slices' keys.
    Split {
        /// The original array's shape.
        shape: Vec<usize>,
        /// The keys of its 1-D slices, in order.
        slices: Vec<String>,
    },
    /// Something else, described for an error message (`str`, `dict`, `int`, ...).
    Other(&'static str),
}

/// The callables the reader evaluates itself. Everything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    /// `numpy.core.multiarray._reconstruct` (NumPy 1) / `numpy._core.multiarray._reconstruct`.
    Reconstruct,
    /// `numpy.ndarray`, the class `_reconstruct` is called with.
    NdArrayClass,
    /// `numpy.dtype`.
    Dtype,
    /// `_codecs.encode`, protocol 2's spelling of `bytes`.
    Encode,
}

impl Global {
    fn resolve(module: &str, name: &str) -> Result<Self, PickleError> {
        match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Ok(Self::Reconstruct)
            }
            ("numpy", "ndarray") => Ok(Self::NdArrayClass),
            ("numpy", "dtype") => Ok(Self::Dtype),
            ("_codecs", "encode") => Ok(Self::Encode),
            _ => Err(PickleError::Forbidden(format!("{module}.{name}"))),
        }
    }
}

/// A numpy object under construction: `REDUCE` creates it, `BUILD` fills it.
#[derive(Debug, Clone, PartialEq)]
enum Object {
    /// An array before its `BUILD`.
    EmptyArray,
    Array(NdArray),
    Dtype {
        code: String,
        big_endian: bool,
    },
}

#[derive(Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float,
    Str(Rc<str>),
    Bytes(Rc<Vec<u8>>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Global),
    Object(Rc<RefCell<Object>>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class or function",
            Value::Object(o) => match o.try_borrow().as_deref() {
                Ok(Object::EmptyArray | Object::Array(_)) => "numpy array",
                Ok(Object::Dtype { .. }) => "numpy dtype",
                Err(_) => "object",
            },
        }
    }

    /// The items of a tuple or list.
    fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::Tuple(t) => Some(t.as_ref().clone()),
            Value::List(l) => Some(l.borrow().clone()),
            _ => None,
        }
    }

    fn as_usize(&self) -> Option<usize> {
        match self {
            Value::Int(i) => usize::try_from(*i).ok(),
            _ => None,
        }
    }
}

fn malformed(message: impl Into<String>) -> PickleError {
    PickleError::Malformed(message.into())
}

/// The entry in which paddle.save (protocols 2 and 3) describes arrays it split into slices.
const SPLIT_INFO: &str = "UnpackBigParamInfor@@";

/// Reads a pickle whose top level is a dict with string keys, as `paddle.save` writes one.
/// `UnpackBigParamInfor@@` comes back as one [`Entry::Split`] per split array.
/// Returns its entries in file order.
pub fn read_dict(bytes: &[u8]) -> Result<Vec<(String, Entry)>, PickleError> {
    let top = Machine::new(bytes).run()?;
    let Value::Dict(dict) = top else {
        return Err(malformed(format!(
            "the pickle holds a {}, not a dict of arrays",
            top.kind()
        )));
    };
    let dict = dict.borrow();
    let mut out = Vec::with_capacity(dict.len());
    for (key, value) in dict.iter() {
        let Value::Str(key) = key else {
            return Err(malformed(format!(
                "a dict key is a {}, not a str",
                key.kind()
            )));
        };
        match value {
            // {array key: {"OriginShape": shape, "slices": [slice keys]}, ...}
            Value::Dict(splits) if &**key == SPLIT_INFO => {
                for (array, info) in splits.borrow().iter() {
                    let Value::Str(array) = array else {
                        return Err(malformed(format!(
                            "{SPLIT_INFO} has a key that is not a str"
                        )));
                    };
                    match entry(array, info)? {
                        split @ Entry::Split { .. } => out.push((array.to_string(), split)),
                        _ => {
                            return Err(malformed(format!(
                                "{SPLIT_INFO}[`{array}`] lacks OriginShape or slices"
                            )));
                        }
                    }
                }
            }
            _ => out.push((key.to_string(), entry(key, value)?)),
        }
    }
    Ok(out)
}

fn entry(key: &str, value: &Value) -> Result<Entry, PickleError> {
    match value {
        Value::Object(object) => match &*object.borrow() {
            Object::Array(array) => Ok(Entry::Array(array.clone())),
            Object::EmptyArray => Err(malformed(format!(
                "`{key}`: a numpy array without its data (no BUILD)"
            ))),
            Object::Dtype { .. } => Ok(Entry::Other("numpy dtype")),
        },
        // `UnpackBigParamInfor@@`'s values: {"OriginShape": shape, "slices": [keys]}.
        Value::Dict(dict) => {
            let dict = dict.borrow();
            let field = |name: &str| {
                dict.iter()
                    .find(|(k, _)| matches!(k, Value::Str(s) if &**s == name))
                    .map(|(_, v)| v.clone())
            };
            let (Some(shape), Some(slices)) = (field("OriginShape"), field("slices")) else {
                return Ok(Entry::Other("dict"));
            };
            let shape = shape
                .items()
                .and_then(|dims| dims.iter().map(Value::as_usize).collect::<Option<Vec<_>>>())
                .ok_or_else(|| malformed(format!("`{key}`: OriginShape is not a shape")))?;
            let slices = slices
                .items()
                .and_then(|items| {
                    items
                        .into_iter()
                        .map(|v| match v {
                            Value::Str(s) => Some(s.to_string()),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| malformed(format!("`{key}`: slices is not a list of keys")))?;
            Ok(Entry::Split { shape, slices })
        }
        other => Ok(Entry::Other(other.kind())),
    }
}

/// The pickle virtual machine, restricted to data-building opcodes and the allow-listed
/// globals.
struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                malformed(format!(
                    "truncated: {n} bytes wanted at offset {}, the file has {}",
                    self.pos,
                    self.bytes.len()
                ))
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len_u32(&mut self) -> Result<usize, PickleError> {
        Ok(u32::from_le_bytes(self.le()?) as usize)
    }

    fn len_u64(&mut self) -> Result<usize, PickleError> {
        usize::try_from(u64::from_le_bytes(self.le()?)).map_err(|_| malformed("length overflows"))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| malformed("truncated: a GLOBAL without its newline"))?;
        let line = std::str::from_utf8(&rest[..end])
            .map_err(|_| malformed("a GLOBAL name is not UTF-8"))?
            .to_string();
        self.pos += end + 1;
        Ok(line)
    }

    fn utf8(&mut self, n: usize) -> Result<Rc<str>, PickleError> {
        let at = self.pos;
        std::str::from_utf8(self.take(n)?)
            .map(Rc::from)
            .map_err(|_| malformed(format!("a string at offset {at} is not UTF-8")))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack
            .pop()
            .ok_or_else(|| malformed(format!("stack underflow at offset {}", self.pos)))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let pos = self.pos;
        self.stack
            .last_mut()
            .ok_or_else(|| malformed(format!("stack underflow at offset {pos}")))
    }

    /// The values pushed since the last MARK, removing them and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| malformed(format!("no MARK before offset {}", self.pos)))?;
        if mark > self.stack.len() {
            return Err(malformed("a MARK above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&self, index: u32) -> Result<Value, PickleError> {
        self.memo
            .get(&index)
            .cloned()
            .ok_or_else(|| malformed(format!("memo entry {index} read before it was written")))
    }

    fn memo_put(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| malformed("MEMOIZE on an empty stack"))?;
        self.memo.insert(index, value);
        Ok(())
    }

    fn push_global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        let global = Global::resolve(module, name)?;
        self.stack.push(Value::Global(global));
        Ok(())
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self
                .u8()
                .map_err(|_| malformed("truncated: the pickle ends before its STOP"))?;
            match op {
                0x80 => {
                    let protocol = self.u8()?;
                    if !(2..=5).contains(&protocol) {
                        return Err(malformed(format!("pickle protocol {protocol}")));
                    }
                }
                0x95 => {
                    self.le::<8>()?; // FRAME: a length hint.
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Value::Dict(Default::default())),
                b']' => self.stack.push(Value::List(Default::default())),
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.len_u32()?
                    };
                    let digits = self.take(n)?;
                    if n > 8 {
                        return Err(malformed(format!("a {n}-byte integer at offset {at}")));
                    }
                    // Little-endian two's complement, sign-extended from its last byte.
                    let negative = digits.last().is_some_and(|b| b & 0x80 != 0);
                    let mut buf = [if negative { 0xff } else { 0 }; 8];
                    buf[..n].copy_from_slice(digits);
                    self.stack.push(Value::Int(i64::from_le_bytes(buf)));
                }
                b'G' => {
                    // BINFLOAT: no weight needs its value, only its place on the stack.
                    self.le::<8>()?;
                    self.stack.push(Value::Float);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.utf8(n)?;
                    self.stack.push(Value::Str(s));
                }
                b'X' => {
                    let n = self.len_u32()?;
                    let s = self.utf8(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let s = self.utf8(n)?;
                    self.stack.push(Value::Str(s));
                }
                // SHORT_BINSTRING / BINSTRING (Python 2 str) and the bytes opcodes: raw bytes.
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let b = Rc::new(self.take(n)?.to_vec());
                    self.stack.push(Value::Bytes(b));
                }
                b'T' | b'B' => {
                    let n = self.len_u32()?;
                    let b = Rc::new(self.take(n)?.to_vec());
                    self.stack.push(Value::Bytes(b));
                }
                0x8e | 0x96 => {
                    let n = self.len_u64()?;
                    let b = Rc::new(self.take(n)?.to_vec());
                    self.stack.push(Value::Bytes(b));
                }
                b'q' => {
                    let i = self.u8()?.into();
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i =
                        u32::try_from(self.memo.len()).map_err(|_| malformed("memo overflow"))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()?.into();
                    let v = self.memo_get(i)?;
                    self.stack.push(v);
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.le()?);
                    let v = self.memo_get(i)?;
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push_global(&module, &name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                        return Err(malformed("STACK_GLOBAL without two strings"));
                    };
                    self.push_global(module, name)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(malformed(format!("stack underflow at offset {at}")));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'a' => {
                    let item = self.pop()?;
                    match self.top()? {
                        Value::List(list) => list.borrow_mut().push(item),
                        other => return Err(malformed(format!("APPEND to a {}", other.kind()))),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(list) => list.borrow_mut().extend(items),
                        other => return Err(malformed(format!("APPENDS to a {}", other.kind()))),
                    }
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = Value::Dict(Default::default());
                    set_items(&dict, items)?;
                    self.stack.push(dict);
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    set_items(self.top()?, vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    set_items(self.top()?, items)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = reduce(&callable, &args)?;
                    self.stack.push(value);
                }
                b'b' => {
                    let state = self.pop()?;
                    build(self.top()?, &state)?;
                }
                0x97 => {
                    return Err(malformed(
                        "out-of-band buffers (NEXT_BUFFER) are not supported",
                    ));
                }
                other => {
                    return Err(malformed(format!(
                        "opcode {:?} (0x{other:02x}) at offset {at} is not one paddle.save writes",
                        other as char
                    )));
                }
            }
        }
    }
}

fn set_items(target: &Value, items: Vec<Value>) -> Result<(), PickleError> {
    let Value::Dict(dict) = target else {
        return Err(malformed(format!("SETITEM on a {}", target.kind())));
    };
    if !items.len().is_multiple_of(2) {
        return Err(malformed("SETITEMS with an odd number of values"));
    }
    let mut dict = dict.borrow_mut();
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        // A repeated key replaces the earlier value, as in Python.
        let existing = dict.iter().position(|(k, _)| same_key(k, &key));
        match existing {
            Some(i) => dict[i].1 = value,
            None => dict.push((key, value)),
        }
    }
    Ok(())
}

fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(a), Value::Str(b)) => a == b,
        (Value::Int(a), Value::Int(b)) => a == b,
        _ => false,
    }
}

/// `callable(*args)` for the allow-listed callables.
fn reduce(callable: &Value, args: &Value) -> Result<Value, PickleError> {
    let Value::Global(global) = callable else {
        return Err(malformed(format!("REDUCE calls a {}", callable.kind())));
    };
    let args = args
        .items()
        .ok_or_else(|| malformed("REDUCE's arguments are not a tuple"))?;
    match (global, args.as_slice()) {
        // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills.
        (Global::Reconstruct, [Value::Global(Global::NdArrayClass), ..]) => {
            Ok(Value::Object(Rc::new(RefCell::new(Object::EmptyArray))))
        }
        (Global::Dtype, [Value::Str(code), ..]) => {
            Ok(Value::Object(Rc::new(RefCell::new(Object::Dtype {
                code: code.to_string(),
                big_endian: false,
            }))))
        }
        (Global::Encode, [Value::Str(text), rest @ ..]) => {
            let encoding = match rest.first() {
                Some(Value::Str(e)) => e.to_ascii_lowercase(),
                _ => "utf-8".to_string(),
            };
            if !matches!(encoding.as_str(), "latin1" | "latin-1" | "iso-8859-1") {
                return Err(malformed(format!(
                    "_codecs.encode with encoding {encoding:?}"
                )));
            }
            text.chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
                .map(|b| Value::Bytes(Rc::new(b)))
                .ok_or_else(|| malformed("_codecs.encode of a non-latin-1 string"))
        }
        (global, _) => Err(malformed(format!(
            "unexpected arguments to {global:?}: {}",
            args.iter().map(Value::kind).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// `obj.__setstate__(state)` for numpy arrays and dtypes.
fn build(target: &Value, state: &Value) -> Result<(), PickleError> {
    let Value::Object(object) = target else {
        return Err(malformed(format!("BUILD on a {}", target.kind())));
    };
    let state = state
        .items()
        .ok_or_else(|| malformed("BUILD's state is not a tuple"))?;
    let mut object = object.borrow_mut();
    match &mut *object {
        // numpy.dtype.__setstate__((3, '<', None, None, None, -1, -1, 0)).
        Object::Dtype { big_endian, .. } => {
            if let Some(Value::Str(order)) = state.get(1) {
                *big_endian = &**order == ">";
            }
            Ok(())
        }
        // ndarray.__setstate__((1, shape, dtype, is_fortran, data)).
        Object::EmptyArray => {
            let [_, shape, dtype, fortran, data] = state.as_slice() else {
                return Err(malformed(format!(
                    "an array's state has {} fields, expected 5",
                    state.len()
                )));
            };
            let shape = shape
                .items()
                .and_then(|d| d.iter().map(Value::as_usize).collect::<Option<Vec<_>>>())
                .ok_or_else(|| malformed("an array's shape is not a tuple of sizes"))?;
            let (code, big_endian) = match dtype {
                Value::Object(d) => match d.try_borrow().as_deref() {
                    Ok(Object::Dtype { code, big_endian }) => (code.clone(), *big_endian),
                    _ => return Err(malformed("an array's dtype is not a dtype")),
                },
                other => {
                    return Err(malformed(format!("an array's dtype is a {}", other.kind())));
                }
            };
            let fortran = matches!(fortran, Value::Bool(true) | Value::Int(1));
            let data = match data {
                Value::Bytes(b) => b.as_ref().clone(),
                Value::List(_) => {
                    return Err(malformed(format!(
                        "an object array (dtype {code}) holds Python objects, not numbers"
                    )));
                }
                other => return Err(malformed(format!("an array's data is a {}", other.kind()))),
            };
            *object = Object::Array(NdArray {
                shape,
                dtype: code,
                big_endian,
                fortran,
                data,
            });
            Ok(())
        }
        Object::Array(_) => Err(malformed("BUILD on an array built already")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps({'w': np.array([1.5, -2.0], dtype='>f4')}, protocol=2)` as numpy 1.x
    /// writes it, hand-assembled: protocol 2, `_codecs.encode` bytes, big-endian dtype.
    fn big_endian_protocol_2() -> Vec<u8> {
        let mut p = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85q\x04c_codecs\nencode\nq\x05X\x01\x00\x00\x00bq\x06X\x06\x00\x00\x00latin1q\x07\x86q\x08Rq\x09\x87q\x0aRq\x0b(K\x01K\x02\x85cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87Rq\x0c(K\x03X\x01\x00\x00\x00>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89h\x05".to_vec();
        // 1.5f32 = 3f c0 00 00, -2.0f32 = c0 00 00 00 (big-endian), latin-1 chars as UTF-8.
        let text: String = [0x3fu8, 0xc0, 0, 0, 0xc0, 0, 0, 0]
            .iter()
            .map(|&b| char::from(b))
            .collect();
        p.push(b'X');
        p.extend((text.len() as u32).to_le_bytes());
        p.extend(text.as_bytes());
        p.extend(b"h\x07\x86Rtbs.");
        p
    }

    #[test]
    fn reads_protocol_2_big_endian() {
        let dict = read_dict(&big_endian_protocol_2()).unwrap();
        assert_eq!(dict.len(), 1);
        let (key, Entry::Array(array)) = &dict[0] else {
            panic!("{dict:?}")
        };
        assert_eq!(key, "w");
        assert_eq!(array.shape, [2]);
        assert_eq!(array.dtype, "f4");
        assert!(array.big_endian);
        assert_eq!(array.data, [0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = big_endian_protocol_2();
        for keep in 0..bytes.len() {
            assert!(read_dict(&bytes[..keep]).is_err(), "{keep} bytes read");
        }
    }

    #[test]
    fn refuses_os_system_before_calling_anything() {
        // pickle.dumps of an object whose __reduce__ is (os.system, ('echo pwned',)).
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
        assert_eq!(
            read_dict(evil),
            Err(PickleError::Forbidden("posix.system".into()))
        );
        let evil4 = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";
        assert_eq!(
            read_dict(evil4),
            Err(PickleError::Forbidden("os.system".into()))
        );
    }

    #[test]
    fn a_list_at_the_top_is_not_a_dict() {
        let err = read_dict(b"\x80\x02]q\x00.").unwrap_err();
        assert!(matches!(err, PickleError::Malformed(m) if m.contains("not a dict")));
    }
}
