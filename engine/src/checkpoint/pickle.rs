//! A restricted unpickler for the `data.pkl` of `torch.save` archives: it never runs code.
//!
//! Python's pickle format is a small stack machine; [`unpickle`] interprets the opcodes that
//! `torch.save` emits with protocols 2 to 5 (see [`unpickle`] for the list) and builds a
//! [`Value`] tree. The only callables it knows are an allow-list of globals, each replaced by
//! a Rust implementation:
//!
//! | global | meaning here |
//! |---|---|
//! | `collections.OrderedDict` | `OrderedDict()` → an empty [`Value::Dict`] (BUILD with its `__dict__`, e.g. a state dict's `_metadata`, is accepted and dropped) |
//! | `torch._utils._rebuild_tensor_v2` | a tensor view of a storage → [`Value::Lazy`] |
//! | `torch._utils._rebuild_parameter` | `nn.Parameter(tensor, requires_grad)` → the tensor |
//! | `torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage` | storage classes, only inside persistent ids |
//! | `argparse.Namespace` | `Namespace()` (NEWOBJ without arguments) and BUILD with its attributes → a [`Value::Dict`] of them (the `args` the official MAE and DINO training checkpoints carry) |
//!
//! Any other global (`GLOBAL` or `STACK_GLOBAL`) is an error naming it, e.g.
//! "forbidden pickle global `os.system`", raised when the opcode is read, before anything
//! else happens; any other opcode is an error naming the opcode. These globals are exactly
//! what torch 2.11 writes for state dicts, optimizer state dicts and `GradScaler` state dicts
//! (and what the official I-JEPA, MAE and DINO checkpoints contain); `torch._utils._rebuild_tensor_v3`
//! (only for the new dtypes uint16/32/64, float8...), sparse/nested/quantized tensors and
//! numpy scalars are rejected.
//!
//! Storages are persistent ids (`BINPERSID` on `('storage', torch.FloatStorage, key,
//! location, numel)`) and stay references ([`StorageRef`]): this module reads no storage data;
//! [`crate::checkpoint::torch_file`] materialises tensors from the archive.
//!
//! Robustness: every length is checked against the remaining input before anything is
//! allocated; containers live in an arena (no recursive drops of attacker-chosen depth); the
//! final tree is built with a nesting limit ([`MAX_DEPTH`]), rejects reference cycles, and is
//! bounded in size by a budget proportional to the input (shared references cannot expand
//! exponentially); duplicate dict keys and unhashable keys are errors. Malformed input is a
//! [`PickleError`], never a panic.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use tch::Kind;

/// The deepest nesting of containers (dicts, lists, tuples) [`unpickle`] accepts.
pub const MAX_DEPTH: usize = 200;

/// The highest pickle protocol understood.
const MAX_PROTOCOL: u8 = 5;

/// A value decoded from a pickle.
///
/// Dicts (plain and `OrderedDict`) keep their insertion order as a list of pairs. Tensors
/// come out of [`unpickle`] as [`Value::Lazy`] references to storages;
/// [`crate::checkpoint::torch_file::load`] replaces them with [`Value::Tensor`].
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int (pickled ints beyond 64 bits are errors).
    Int(i64),
    /// A float.
    Float(f64),
    /// A `str` (also a Python 2 `str` written as BINSTRING, decoded as UTF-8).
    Str(String),
    /// `bytes` / `bytearray`.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict or `OrderedDict`, in insertion order; keys are unique.
    Dict(Vec<(Value, Value)>),
    /// A materialised tensor (contiguous, on the CPU; `requires_grad` off): its own memory, or
    /// that of a storage other tensors of the file share, as torch's load shares it.
    Tensor(tch::Tensor),
    /// A tensor not (yet) read from the archive: its storage, offset, size and stride.
    Lazy(Box<TensorRef>),
}

/// A storage as named by a persistent id: `('storage', torch.FloatStorage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    /// The record name under `<prefix>/data/` in the archive.
    pub key: String,
    /// The element type, from the storage class.
    pub kind: Kind,
    /// Where it lived when saved (`cpu`, `cuda:0`...); informational, tensors load on the CPU.
    pub location: String,
    /// Its number of elements.
    pub numel: i64,
}

/// A tensor as `torch._utils._rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    /// The storage it views.
    pub storage: StorageRef,
    /// Offset of element 0 in the storage, in elements.
    pub offset: i64,
    /// The shape (empty for a 0-d tensor).
    pub size: Vec<i64>,
    /// The strides, in elements, one per dimension.
    pub stride: Vec<i64>,
    /// Whether it was saved with `requires_grad` (or as an `nn.Parameter` that requires it).
    pub requires_grad: bool,
}

impl TensorRef {
    /// The number of elements (product of the sizes; 1 for 0-d), or `None` on overflow.
    pub fn numel(&self) -> Option<i64> {
        self.size.iter().try_fold(1i64, |acc, &s| acc.checked_mul(s))
    }
}

/// A malformed or forbidden pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError {
    /// Byte offset of the opcode at fault in the pickle (its length when the fault is at the end).
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pickle byte {})", self.message, self.offset)
    }
}

impl std::error::Error for PickleError {}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => write!(f, "None"),
            Value::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "bytes[{}]", b.len()),
            Value::List(v) => f.debug_list().entries(v).finish(),
            Value::Tuple(v) => {
                let mut t = f.debug_tuple("");
                for x in v {
                    t.field(x);
                }
                t.finish()
            }
            Value::Dict(items) => f.debug_map().entries(items.iter().map(|(k, v)| (k, v))).finish(),
            Value::Tensor(t) => match t.f_kind() {
                Ok(k) => write!(f, "Tensor{:?}<{k:?}>", t.size()),
                Err(_) => write!(f, "Tensor(undefined)"),
            },
            Value::Lazy(r) => write!(f, "Lazy{:?}<{:?}>@{}", r.size, r.storage.kind, r.storage.key),
        }
    }
}

impl Value {
    /// The Python-ish name of its type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Tensor(_) => "tensor",
            Value::Lazy(_) => "tensor (not loaded)",
        }
    }

    /// Its type name with its article, as a message says it: `a dict`, `an int`, `None` (it
    /// read "a int").
    pub fn a_type_name(&self) -> String {
        match self.type_name() {
            "None" => "None".into(),
            t if t.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {t}"),
            t => format!("a {t}"),
        }
    }

    /// Whether it is `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The pairs of a dict, in order.
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(items) => Some(items),
            _ => None,
        }
    }

    /// The items of a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// The items of a tuple.
    pub fn as_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The items of a list or a tuple.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The text of a str.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An int (not a bool).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A float, or an int converted to a float.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// A bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A number however it was stored: int, float, or a one-element materialised tensor
    /// (AdamW's `step` is a 0-d float tensor since torch 1.12 and an int before).
    pub fn to_f64(&self) -> Option<f64> {
        match self {
            Value::Float(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            Value::Tensor(t) if t.numel() == 1 => t.f_reshape([1]).and_then(|t| t.f_double_value(&[0])).ok(),
            _ => None,
        }
    }

    /// A materialised tensor.
    pub fn as_tensor(&self) -> Option<&tch::Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// A tensor not read from the archive.
    pub fn as_lazy(&self) -> Option<&TensorRef> {
        match self {
            Value::Lazy(r) => Some(r),
            _ => None,
        }
    }

    /// The value under a string key of a dict (`None` when not a dict or no such key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// The value under an int key of a dict (e.g. the parameter index in `opt["state"]`).
    pub fn get_int(&self, key: i64) -> Option<&Value> {
        self.as_dict()?.iter().find(|(k, _)| k.as_int() == Some(key)).map(|(_, v)| v)
    }
}

/// Decodes a pickle into a [`Value`], tensors as [`Value::Lazy`].
///
/// Opcodes understood (everything `torch.save` writes with protocols 2 to 5): PROTO, FRAME,
/// STOP, MARK, POP, POP_MARK, DUP, NONE, NEWTRUE, NEWFALSE, BININT, BININT1, BININT2, LONG1,
/// LONG4, BINFLOAT, SHORT_BINUNICODE, BINUNICODE, BINUNICODE8, SHORT_BINSTRING, BINSTRING,
/// SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8, EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE,
/// TUPLE, TUPLE1, TUPLE2, TUPLE3, SETITEM, SETITEMS, APPEND, APPENDS, BINPUT, LONG_BINPUT,
/// MEMOIZE, BINGET, LONG_BINGET, GLOBAL, STACK_GLOBAL, REDUCE, NEWOBJ (of `argparse.Namespace`
/// only), BUILD, BINPERSID.
/// The pickle must end at its STOP with exactly one value on the stack.
pub fn unpickle(data: &[u8]) -> Result<Value, PickleError> {
    let mut vm = Vm { data, pos: 0, op_pos: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), arena: Vec::new() };
    let root = vm.run()?;
    // Budget: nodes plus string bytes of the final tree; legitimate files need about the
    // pickle's own size (shared references are short opcodes for small strings).
    let mut budget = data.len().saturating_mul(16).saturating_add(1 << 20);
    let mut active = vec![false; vm.arena.len()];
    vm.to_value(&root, 0, &mut budget, &mut active)
}

/// A global of the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Namespace,
    Storage(Kind),
}

impl Global {
    fn name(self) -> String {
        match self {
            Global::OrderedDict => "collections.OrderedDict".into(),
            Global::RebuildTensorV2 => "torch._utils._rebuild_tensor_v2".into(),
            Global::RebuildParameter => "torch._utils._rebuild_parameter".into(),
            Global::Namespace => "argparse.Namespace".into(),
            Global::Storage(k) => format!("torch.{}", storage_class(k).unwrap_or("?Storage")),
        }
    }
}

const STORAGES: [(&str, Kind); 10] = [
    ("FloatStorage", Kind::Float),
    ("DoubleStorage", Kind::Double),
    ("HalfStorage", Kind::Half),
    ("BFloat16Storage", Kind::BFloat16),
    ("LongStorage", Kind::Int64),
    ("IntStorage", Kind::Int),
    ("ShortStorage", Kind::Int16),
    ("CharStorage", Kind::Int8),
    ("ByteStorage", Kind::Uint8),
    ("BoolStorage", Kind::Bool),
];

/// The torch storage class name of an element kind (`Float` → `FloatStorage`).
pub fn storage_class(kind: Kind) -> Option<&'static str> {
    STORAGES.iter().find(|(_, k)| *k == kind).map(|(n, _)| *n)
}

fn resolve_global(module: &str, name: &str) -> Result<Global, String> {
    let g = match (module, name) {
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
        ("argparse", "Namespace") => Some(Global::Namespace),
        ("torch", n) => STORAGES.iter().find(|(s, _)| *s == n).map(|(_, k)| Global::Storage(*k)),
        _ => None,
    };
    g.ok_or_else(|| format!("forbidden pickle global `{}.{}`", module.escape_debug(), name.escape_debug()))
}

/// A value on the VM's stack or in its memo; containers live in the arena.
#[derive(Clone)]
enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Ref(usize),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

enum Container {
    List(Vec<Obj>),
    Tuple(Vec<Obj>),
    Dict { items: Vec<(Obj, Obj)>, keys: HashSet<HashKey>, ordered: bool },
    /// An `argparse.Namespace` and the dict BUILD gave it as its attributes (held, not
    /// copied: a shared state must not multiply the memory a pickle can ask for).
    Namespace(Option<Obj>),
}

/// A hashable dict key (Python's equality: `True == 1 == 1.0`).
#[derive(Clone, PartialEq, Eq, Hash)]
enum HashKey {
    None,
    Int(i64),
    Float(u64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Vec<HashKey>),
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    op_pos: usize,
    stack: Vec<Obj>,
    marks: Vec<usize>,
    memo: HashMap<u64, Obj>,
    arena: Vec<Container>,
}

type R<T> = Result<T, PickleError>;

/// The opcode names, for error messages.
fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return None,
    })
}

impl<'a> Vm<'a> {
    fn err<T>(&self, message: impl Into<String>) -> R<T> {
        Err(PickleError { offset: self.op_pos, message: message.into() })
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(PickleError {
                offset: self.op_pos,
                message: format!("truncated pickle: an operand needs {n} bytes, {left} left"),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn arr<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len_u32(&mut self) -> R<usize> {
        Ok(u32::from_le_bytes(self.arr()?) as usize)
    }

    fn len_u64(&mut self) -> R<usize> {
        let n = u64::from_le_bytes(self.arr()?);
        // larger than any input: take() reports it as truncation
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn line(&mut self) -> R<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("truncated pickle: GLOBAL operand without a newline");
        };
        let s = &rest[..end];
        self.pos += end + 1;
        match std::str::from_utf8(s) {
            Ok(s) => Ok(s),
            Err(_) => self.err("GLOBAL operand is not UTF-8"),
        }
    }

    fn utf8(&self, b: &[u8]) -> R<Rc<str>> {
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Rc::from(s)),
            Err(e) => self.err(format!("string is not valid UTF-8 ({e})")),
        }
    }

    fn push(&mut self, o: Obj) {
        self.stack.push(o);
    }

    fn pop(&mut self) -> R<Obj> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow (malformed pickle)");
        }
        match self.stack.pop() {
            Some(o) => Ok(o),
            None => self.err("stack underflow (malformed pickle)"),
        }
    }

    fn top(&self) -> R<Obj> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(o) if self.stack.len() > floor => Ok(o.clone()),
            _ => self.err("stack underflow (malformed pickle)"),
        }
    }

    fn pop_mark(&mut self) -> R<Vec<Obj>> {
        match self.marks.pop() {
            Some(m) => Ok(self.stack.split_off(m)),
            None => self.err("no MARK on the stack (malformed pickle)"),
        }
    }

    fn alloc(&mut self, c: Container) -> Obj {
        self.arena.push(c);
        Obj::Ref(self.arena.len() - 1)
    }

    fn type_name(&self, o: &Obj) -> String {
        match o {
            Obj::None => "None".into(),
            Obj::Bool(_) => "bool".into(),
            Obj::Int(_) => "int".into(),
            Obj::Float(_) => "float".into(),
            Obj::Str(_) => "str".into(),
            Obj::Bytes(_) => "bytes".into(),
            Obj::Ref(i) => match self.arena.get(*i) {
                Some(Container::List(_)) => "list".into(),
                Some(Container::Tuple(_)) => "tuple".into(),
                Some(Container::Dict { .. }) => "dict".into(),
                Some(Container::Namespace(_)) => "argparse.Namespace".into(),
                None => "?".into(),
            },
            Obj::Global(g) => format!("global `{}`", g.name()),
            Obj::Storage(_) => "storage".into(),
            Obj::Tensor(_) => "tensor".into(),
        }
    }

    fn tuple_items(&self, o: &Obj, what: &str) -> R<Vec<Obj>> {
        match o {
            Obj::Ref(i) => match self.arena.get(*i) {
                Some(Container::Tuple(v)) => Ok(v.clone()),
                _ => self.err(format!("{what} must be a tuple, not {}", self.type_name(o))),
            },
            _ => self.err(format!("{what} must be a tuple, not {}", self.type_name(o))),
        }
    }

    fn int_tuple(&self, o: &Obj, what: &str) -> R<Vec<i64>> {
        let items = self.tuple_items(o, what)?;
        items
            .iter()
            .map(|x| match x {
                Obj::Int(i) if *i >= 0 => Ok(*i),
                // (a negative one was said as "found int")
                Obj::Int(i) => self.err(format!("{what} must hold non-negative ints, found {i}")),
                _ => self.err(format!("{what} must hold non-negative ints, found {}", self.type_name(x))),
            })
            .collect()
    }

    fn empty_dict(&self, o: &Obj) -> bool {
        matches!(o, Obj::Ref(i) if matches!(self.arena.get(*i), Some(Container::Dict { items, .. }) if items.is_empty()))
    }

    fn hash_key(&self, o: &Obj, depth: usize) -> R<HashKey> {
        if depth > 16 {
            return self.err("dict key nested too deeply");
        }
        Ok(match o {
            Obj::None => HashKey::None,
            Obj::Bool(b) => HashKey::Int(*b as i64),
            Obj::Int(i) => HashKey::Int(*i),
            Obj::Float(x) => {
                if x.fract() == 0.0 && x.abs() < 9.2e18 {
                    HashKey::Int(*x as i64)
                } else {
                    HashKey::Float(if *x == 0.0 { 0 } else { x.to_bits() })
                }
            }
            Obj::Str(s) => HashKey::Str(s.clone()),
            Obj::Bytes(b) => HashKey::Bytes(b.clone()),
            Obj::Ref(i) => match self.arena.get(*i) {
                Some(Container::Tuple(v)) => {
                    HashKey::Tuple(v.iter().map(|x| self.hash_key(x, depth + 1)).collect::<R<_>>()?)
                }
                _ => return self.err(format!("unhashable dict key of type {}", self.type_name(o))),
            },
            _ => return self.err(format!("unsupported dict key of type {}", self.type_name(o))),
        })
    }

    fn set_items(&mut self, target: &Obj, pairs: Vec<(Obj, Obj)>) -> R<()> {
        let keys: Vec<HashKey> = pairs.iter().map(|(k, _)| self.hash_key(k, 0)).collect::<R<_>>()?;
        let idx = match target {
            Obj::Ref(i) if matches!(self.arena.get(*i), Some(Container::Dict { .. })) => *i,
            _ => return self.err(format!("SETITEM(S) on {}, not a dict", self.type_name(target))),
        };
        let Some(Container::Dict { items, keys: seen, .. }) = self.arena.get_mut(idx) else {
            return self.err("SETITEM(S) on a non-dict");
        };
        let mut dup = false;
        for (key, pair) in keys.into_iter().zip(pairs) {
            if !seen.insert(key) {
                dup = true;
                break;
            }
            items.push(pair);
        }
        if dup {
            return self.err("duplicate dict key");
        }
        Ok(())
    }

    fn append(&mut self, target: &Obj, new: Vec<Obj>) -> R<()> {
        match target {
            Obj::Ref(i) => match self.arena.get_mut(*i) {
                Some(Container::List(v)) => {
                    v.extend(new);
                    Ok(())
                }
                _ => self.err(format!("APPEND(S) on {}, not a list", self.type_name(target))),
            },
            _ => self.err(format!("APPEND(S) on {}, not a list", self.type_name(target))),
        }
    }

    fn int_of_le(&self, bytes: &[u8]) -> R<i64> {
        if bytes.is_empty() {
            return Ok(0);
        }
        if bytes.len() > 8 {
            // allowed only when it is a sign extension of 8 bytes
            let (lo, hi) = bytes.split_at(8);
            let neg = lo[7] & 0x80 != 0;
            let fill = if neg { 0xff } else { 0 };
            if hi.iter().any(|&b| b != fill) {
                return self.err("integer does not fit in 64 bits");
            }
            return self.int_of_le(lo);
        }
        let neg = bytes[bytes.len() - 1] & 0x80 != 0;
        let mut buf = if neg { [0xffu8; 8] } else { [0u8; 8] };
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(buf))
    }

    fn memo_get(&self, key: u64) -> R<Obj> {
        match self.memo.get(&key) {
            Some(o) => Ok(o.clone()),
            None => self.err(format!("memo entry {key} is missing (malformed pickle)")),
        }
    }

    fn run(&mut self) -> R<Obj> {
        loop {
            self.op_pos = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > MAX_PROTOCOL {
                        return self.err(format!("unsupported pickle protocol {p}"));
                    }
                }
                0x95 => {
                    let n = self.len_u64()?;
                    if n > self.data.len() - self.pos {
                        return self.err("truncated pickle: FRAME longer than the data");
                    }
                }
                b'.' => {
                    let v = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return self.err("malformed pickle: values left on the stack at STOP");
                    }
                    if self.pos != self.data.len() {
                        return self.err(format!("{} trailing bytes after STOP", self.data.len() - self.pos));
                    }
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.push(t);
                }
                b'N' => self.push(Obj::None),
                0x88 => self.push(Obj::Bool(true)),
                0x89 => self.push(Obj::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.arr()?);
                    self.push(Obj::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Obj::Int(v as i64));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.arr()?);
                    self.push(Obj::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    let v = self.int_of_le(b)?;
                    self.push(Obj::Int(v));
                }
                0x8b => {
                    let n = i32::from_le_bytes(self.arr()?);
                    if n < 0 {
                        return self.err("LONG4 with a negative length");
                    }
                    let b = self.take(n as usize)?;
                    let v = self.int_of_le(b)?;
                    self.push(Obj::Int(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.arr()?);
                    self.push(Obj::Float(v));
                }
                0x8c | b'X' | 0x8d | b'U' | b'T' => {
                    let n = match op {
                        0x8c | b'U' => self.u8()? as usize,
                        b'X' => self.len_u32()?,
                        b'T' => {
                            let n = i32::from_le_bytes(self.arr()?);
                            if n < 0 {
                                return self.err("BINSTRING with a negative length");
                            }
                            n as usize
                        }
                        _ => self.len_u64()?,
                    };
                    let b = self.take(n)?;
                    let s = self.utf8(b)?;
                    self.push(Obj::Str(s));
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let n = match op {
                        b'C' => self.u8()? as usize,
                        b'B' => self.len_u32()?,
                        _ => self.len_u64()?,
                    };
                    let b = self.take(n)?;
                    self.push(Obj::Bytes(Rc::from(b)));
                }
                b'}' => {
                    let d = self.alloc(Container::Dict { items: Vec::new(), keys: HashSet::new(), ordered: false });
                    self.push(d);
                }
                b']' => {
                    let l = self.alloc(Container::List(Vec::new()));
                    self.push(l);
                }
                b')' => {
                    let t = self.alloc(Container::Tuple(Vec::new()));
                    self.push(t);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let t = self.alloc(Container::Tuple(items));
                    self.push(t);
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return self.err("stack underflow (malformed pickle)");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let t = self.alloc(Container::Tuple(items));
                    self.push(t);
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.set_items(&d, vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return self.err("SETITEMS with an odd number of items");
                    }
                    let d = self.top()?;
                    let mut it = items.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    self.set_items(&d, pairs)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    self.append(&l, vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let l = self.top()?;
                    self.append(&l, items)?;
                }
                b'q' | b'r' | 0x94 => {
                    let key = match op {
                        b'q' => self.u8()? as u64,
                        b'r' => u32::from_le_bytes(self.arr()?) as u64,
                        _ => self.memo.len() as u64,
                    };
                    let t = self.top()?;
                    self.memo.insert(key, t);
                }
                b'h' => {
                    let key = self.u8()? as u64;
                    let o = self.memo_get(key)?;
                    self.push(o);
                }
                b'j' => {
                    let key = u32::from_le_bytes(self.arr()?) as u64;
                    let o = self.memo_get(key)?;
                    self.push(o);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    match resolve_global(module, name) {
                        Ok(g) => self.push(Obj::Global(g)),
                        Err(e) => return self.err(e),
                    }
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Obj::Str(module), Obj::Str(name)) = (&module, &name) else {
                        return self.err("STACK_GLOBAL operands must be strings");
                    };
                    match resolve_global(module, name) {
                        Ok(g) => self.push(Obj::Global(g)),
                        Err(e) => return self.err(e),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let r = self.reduce(&f, &args)?;
                    self.push(r);
                }
                0x81 => {
                    // NEWOBJ: `cls.__new__(cls, *args)`, how protocol 2+ pickles a plain object
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    if !matches!(cls, Obj::Global(Global::Namespace)) {
                        return self.err(format!("NEWOBJ of {} (only `argparse.Namespace` is accepted)", self.type_name(&cls)));
                    }
                    if !self.tuple_items(&args, "arguments of `argparse.Namespace`")?.is_empty() {
                        return self.err("`argparse.Namespace` created with arguments");
                    }
                    let ns = self.alloc(Container::Namespace(None));
                    self.push(ns);
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    self.build(&target, &state)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let s = self.persistent_load(&pid)?;
                    self.push(s);
                }
                _ => {
                    return match opcode_name(op) {
                        Some(name) => self.err(format!("unsupported pickle opcode {name} (0x{op:02x})")),
                        None => self.err(format!("unknown pickle opcode 0x{op:02x}")),
                    }
                }
            }
        }
    }

    fn reduce(&mut self, f: &Obj, args: &Obj) -> R<Obj> {
        let Obj::Global(g) = f else {
            return self.err(format!("REDUCE on {}, which is not callable", self.type_name(f)));
        };
        let args = self.tuple_items(args, &format!("arguments of `{}`", g.name()))?;
        match g {
            Global::OrderedDict => {
                if !args.is_empty() {
                    return self.err("`collections.OrderedDict` called with arguments");
                }
                Ok(self.alloc(Container::Dict { items: Vec::new(), keys: HashSet::new(), ordered: true }))
            }
            Global::RebuildTensorV2 => {
                if !(6..=7).contains(&args.len()) {
                    return self.err(format!("`_rebuild_tensor_v2` takes 6 or 7 arguments, got {}", args.len()));
                }
                let Obj::Storage(storage) = &args[0] else {
                    return self.err(format!("`_rebuild_tensor_v2` on {}, not a storage", self.type_name(&args[0])));
                };
                let offset = match args[1] {
                    Obj::Int(o) if o >= 0 => o,
                    _ => return self.err("`_rebuild_tensor_v2`: storage offset must be a non-negative int"),
                };
                let size = self.int_tuple(&args[2], "tensor size")?;
                let stride = self.int_tuple(&args[3], "tensor stride")?;
                if size.len() != stride.len() {
                    return self.err(format!("tensor size {size:?} and stride {stride:?} differ in length"));
                }
                let Obj::Bool(requires_grad) = args[4] else {
                    return self.err("`_rebuild_tensor_v2`: requires_grad must be a bool");
                };
                if !self.empty_dict(&args[5]) {
                    return self.err("tensor with backward hooks (only an empty OrderedDict is accepted)");
                }
                if args.len() == 7 && !self.empty_dict(&args[6]) {
                    return self.err("tensor metadata (conjugate/negative views...) is not supported");
                }
                Ok(Obj::Tensor(Rc::new(TensorRef {
                    storage: (**storage).clone(),
                    offset,
                    size,
                    stride,
                    requires_grad,
                })))
            }
            Global::RebuildParameter => {
                if args.len() != 3 {
                    return self.err(format!("`_rebuild_parameter` takes 3 arguments, got {}", args.len()));
                }
                let Obj::Tensor(t) = &args[0] else {
                    return self.err(format!("`_rebuild_parameter` on {}, not a tensor", self.type_name(&args[0])));
                };
                let Obj::Bool(requires_grad) = args[1] else {
                    return self.err("`_rebuild_parameter`: requires_grad must be a bool");
                };
                if !self.empty_dict(&args[2]) {
                    return self.err("parameter with backward hooks (only an empty OrderedDict is accepted)");
                }
                let mut t = (**t).clone();
                t.requires_grad = requires_grad;
                Ok(Obj::Tensor(Rc::new(t)))
            }
            Global::Namespace => self.err("REDUCE of `argparse.Namespace` (a Namespace is pickled with NEWOBJ)"),
            Global::Storage(_) => self.err(format!("`{}` may only appear in a persistent id", g.name())),
        }
    }

    fn build(&mut self, target: &Obj, state: &Obj) -> R<()> {
        let idx = match target {
            Obj::Ref(i) => *i,
            _ => usize::MAX,
        };
        match self.arena.get(idx) {
            Some(Container::Dict { ordered: true, .. }) => {}
            // a Namespace's `__dict__`: its attributes, set once (pickle writes one BUILD)
            Some(Container::Namespace(Some(_))) => return self.err("a second BUILD of an `argparse.Namespace`"),
            Some(Container::Namespace(None)) => {
                if !matches!(state, Obj::Ref(s) if matches!(self.arena.get(*s), Some(Container::Dict { ordered: false, .. }))) {
                    return self.err(format!("BUILD of an `argparse.Namespace` with a {} state", self.type_name(state)));
                }
                self.arena[idx] = Container::Namespace(Some(state.clone()));
                return Ok(());
            }
            _ => {
                return self.err(format!("BUILD on {} (only an OrderedDict's and an argparse.Namespace's attributes are accepted)", self.type_name(target)))
            }
        }
        // The OrderedDict's `__dict__` (a state dict's `_metadata`): accepted, dropped.
        let state_ok = match state {
            Obj::None => true,
            Obj::Ref(i) => matches!(self.arena.get(*i), Some(Container::Dict { .. })),
            _ => false,
        };
        if !state_ok {
            return self.err(format!("BUILD of an OrderedDict with a {} state", self.type_name(state)));
        }
        Ok(())
    }

    fn persistent_load(&mut self, pid: &Obj) -> R<Obj> {
        let items = self.tuple_items(pid, "a persistent id")?;
        let [Obj::Str(tag), Obj::Global(Global::Storage(kind)), Obj::Str(key), Obj::Str(location), Obj::Int(numel)] =
            items.as_slice()
        else {
            return self.err("persistent id is not ('storage', torch.<Type>Storage, key, location, numel)");
        };
        if &**tag != "storage" {
            return self.err(format!("persistent id of kind {:?}, expected 'storage'", tag));
        }
        if key.is_empty() || *numel < 0 {
            return self.err("persistent id with an empty key or negative size");
        }
        Ok(Obj::Storage(Rc::new(StorageRef {
            key: key.to_string(),
            kind: *kind,
            location: location.to_string(),
            numel: *numel,
        })))
    }

    fn charge(&self, budget: &mut usize, n: usize) -> R<()> {
        match budget.checked_sub(n) {
            Some(b) => {
                *budget = b;
                Ok(())
            }
            None => Err(PickleError {
                offset: self.data.len(),
                message: "pickle expands beyond the size limit (shared references)".into(),
            }),
        }
    }

    fn to_value(&self, o: &Obj, depth: usize, budget: &mut usize, active: &mut [bool]) -> R<Value> {
        let end_err = |m: String| Err(PickleError { offset: self.data.len(), message: m });
        if depth > MAX_DEPTH {
            return end_err(format!("containers nested deeper than {MAX_DEPTH}"));
        }
        self.charge(budget, 1)?;
        Ok(match o {
            Obj::None => Value::None,
            Obj::Bool(b) => Value::Bool(*b),
            Obj::Int(i) => Value::Int(*i),
            Obj::Float(x) => Value::Float(*x),
            Obj::Str(s) => {
                self.charge(budget, s.len())?;
                Value::Str(s.to_string())
            }
            Obj::Bytes(b) => {
                self.charge(budget, b.len())?;
                Value::Bytes(b.to_vec())
            }
            Obj::Tensor(t) => {
                self.charge(budget, t.storage.key.len() + t.storage.location.len() + 2 * t.size.len())?;
                Value::Lazy(Box::new((**t).clone()))
            }
            Obj::Global(g) => return end_err(format!("global `{}` left as a value", g.name())),
            Obj::Storage(s) => return end_err(format!("bare storage `{}` (not inside a tensor)", s.key)),
            Obj::Ref(i) => {
                let i = *i;
                let (Some(c), Some(flag)) = (self.arena.get(i), active.get(i).copied()) else {
                    return end_err("dangling container reference".into());
                };
                if flag {
                    return end_err("recursive structure (a container inside itself)".into());
                }
                active[i] = true;
                let v = match c {
                    Container::List(items) => Value::List(
                        items.iter().map(|x| self.to_value(x, depth + 1, budget, active)).collect::<R<_>>()?,
                    ),
                    Container::Tuple(items) => Value::Tuple(
                        items.iter().map(|x| self.to_value(x, depth + 1, budget, active)).collect::<R<_>>()?,
                    ),
                    Container::Namespace(None) => Value::Dict(Vec::new()),
                    Container::Namespace(Some(attrs)) => {
                        let v = self.to_value(attrs, depth + 1, budget, active)?;
                        if let Some((k, _)) = v.as_dict().and_then(|d| d.iter().find(|(k, _)| k.as_str().is_none())) {
                            return end_err(format!("an `argparse.Namespace` attribute named by {}", k.a_type_name()));
                        }
                        v
                    }
                    Container::Dict { items, .. } => Value::Dict(
                        items
                            .iter()
                            .map(|(k, v)| {
                                Ok((self.to_value(k, depth + 1, budget, active)?, self.to_value(v, depth + 1, budget, active)?))
                            })
                            .collect::<R<_>>()?,
                    ),
                };
                active[i] = false;
                v
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_name_has_its_article() {
        assert_eq!((Value::Int(1).a_type_name(), Value::Dict(Vec::new()).a_type_name(), Value::None.a_type_name()), ("an int".to_string(), "a dict".to_string(), "None".to_string()));
    }

    fn s(text: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend((text.len() as u32).to_le_bytes());
        v.extend(text.as_bytes());
        v
    }

    fn err(data: &[u8]) -> String {
        match unpickle(data) {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn scalars_and_containers() {
        // {'a': [1, -2, 3.5, None, True], 'b': ('x', b'yz'), 7: 2**40}
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend(s("a"));
        p.extend([b']', b'(', b'K', 1, b'J']);
        p.extend((-2i32).to_le_bytes());
        p.push(b'G');
        p.extend(3.5f64.to_be_bytes());
        p.extend([b'N', 0x88, b'e']);
        p.extend(s("b"));
        p.extend([0x8c, 1, b'x', b'C', 2, b'y', b'z', 0x86]);
        p.extend([b'K', 7, 0x8a, 6, 0, 0, 0, 0, 0, 1]);
        p.extend([b'u', b'.']);
        let v = unpickle(&p).unwrap();
        let a = v.get("a").unwrap().as_list().unwrap();
        assert_eq!(a[0].as_int(), Some(1));
        assert_eq!(a[1].as_int(), Some(-2));
        assert_eq!(a[2].as_float(), Some(3.5));
        assert!(a[3].is_none());
        assert_eq!(a[4].as_bool(), Some(true));
        let b = v.get("b").unwrap().as_tuple().unwrap();
        assert_eq!(b[0].as_str(), Some("x"));
        assert!(matches!(&b[1], Value::Bytes(x) if x == b"yz"));
        assert_eq!(v.get_int(7).unwrap().as_int(), Some(1 << 40));
    }

    /// `pickle.dumps(argparse.Namespace(lr=0.5, model="mae_vit_base_patch16", input_size=224),
    /// protocol=P)` as Python 3 writes it (the `args` of the official MAE and DINO training
    /// checkpoints): a dict of its attributes.
    #[test]
    fn argparse_namespace_is_a_dict_of_its_attributes() {
        let p2: &[u8] = b"\x80\x02cargparse\nNamespace\nq\x00)\x81q\x01}q\x02(X\x02\x00\x00\x00lrq\x03G?\xe0\x00\x00\x00\x00\x00\x00X\x05\x00\x00\x00modelq\x04X\x14\x00\x00\x00mae_vit_base_patch16q\x05X\n\x00\x00\x00input_sizeq\x06K\xe0ub.";
        let p4: &[u8] = b"\x80\x04\x95^\x00\x00\x00\x00\x00\x00\x00\x8c\x08argparse\x94\x8c\tNamespace\x94\x93\x94)\x81\x94}\x94(\x8c\x02lr\x94G?\xe0\x00\x00\x00\x00\x00\x00\x8c\x05model\x94\x8c\x14mae_vit_base_patch16\x94\x8c\ninput_size\x94K\xe0ub.";
        for p in [p2, p4] {
            let v = unpickle(p).unwrap();
            assert_eq!(v.get("lr").unwrap().as_float(), Some(0.5));
            assert_eq!(v.get("model").unwrap().as_str(), Some("mae_vit_base_patch16"));
            assert_eq!(v.get("input_size").unwrap().as_int(), Some(224));
            assert_eq!(v.as_dict().unwrap().len(), 3);
        }
        // an empty Namespace has no BUILD
        let v = unpickle(b"\x80\x02cargparse\nNamespace\nq\x00)\x81q\x01.").unwrap();
        assert_eq!(v.as_dict().unwrap().len(), 0);
        // NEWOBJ of anything else, arguments, REDUCE, a second BUILD, a non-dict state, a
        // non-str attribute name, an item assignment: errors
        assert!(err(b"\x80\x02ccollections\nOrderedDict\n)\x81.").contains("NEWOBJ of global `collections.OrderedDict`"));
        assert!(err(b"\x80\x02cargparse\nNamespace\nK\x01\x85\x81.").contains("created with arguments"));
        assert!(err(b"\x80\x02cargparse\nNamespace\n)R.").contains("REDUCE of `argparse.Namespace`"));
        assert!(err(b"\x80\x02cargparse\nNamespace\n)\x81}b}b.").contains("second BUILD"));
        assert!(err(b"\x80\x02cargparse\nNamespace\n)\x81]b.").contains("with a list state"));
        assert!(err(b"\x80\x02cargparse\nNamespace\n)\x81}K\x01K\x02sb.").contains("attribute named by an int"));
        assert!(err(b"\x80\x02cargparse\nNamespace\n)\x81K\x01K\x02s.").contains("SETITEM(S) on argparse.Namespace"));
        // a Namespace inside its own attributes is a cycle
        assert!(err(b"\x80\x02cargparse\nNamespace\n)\x81q\x00}q\x01X\x01\x00\x00\x00ah\x00sb.").contains("recursive"));
    }

    #[test]
    fn long1_negative_and_wide() {
        // LONG1 of -1 in one byte; LONG1 of 2**63-1 in 9 bytes (sign byte 0)
        let mut p = vec![0x80, 2, b'(', 0x8a, 1, 0xff, 0x8a, 9];
        p.extend(i64::MAX.to_le_bytes());
        p.extend([0, b't', b'.']);
        let v = unpickle(&p).unwrap();
        let t = v.as_tuple().unwrap();
        assert_eq!(t[0].as_int(), Some(-1));
        assert_eq!(t[1].as_int(), Some(i64::MAX));
        let mut p = vec![0x80, 2, 0x8a, 9];
        p.extend(i64::MAX.to_le_bytes());
        p.extend([1, b'.']);
        assert!(err(&p).contains("64 bits"));
    }

    #[test]
    fn forbidden_globals() {
        assert!(err(b"\x80\x02cos\nsystem\nq\x00.").contains("forbidden pickle global `os.system`"));
        assert!(err(b"\x80\x02cbuiltins\neval\n.").contains("`builtins.eval`"));
        assert!(err(b"\x80\x04\x8c\x0asubprocess\x8c\x05Popen\x93.").contains("`subprocess.Popen`"));
        assert!(err(b"\x80\x02ctorch\nload\n.").contains("`torch.load`"));
        assert!(err(b"\x80\x02ctorch._utils\n_rebuild_tensor_v3\n.").contains("_rebuild_tensor_v3"));
    }

    #[test]
    fn unsupported_opcodes_are_named() {
        assert!(err(b"\x80\x02\x8f.").contains("EMPTY_SET"));
        assert!(err(b"\x80\x02I1\n.").contains("INT"));
        assert!(err(b"\x80\x02\xff.").contains("0xff"));
        assert!(err(b"\x80\x06N.").contains("protocol 6"));
    }

    #[test]
    fn malformed_structures() {
        assert!(err(b"\x80\x02.").contains("underflow"));
        assert!(err(b"\x80\x02NN.").contains("left on the stack"));
        assert!(err(b"\x80\x02N.N").contains("trailing"));
        assert!(err(b"\x80\x02h\x05.").contains("memo entry 5"));
        assert!(err(b"\x80\x02}NNNs.").contains("SETITEM(S) on None, not a dict"));
        assert!(err(b"\x80\x02]NNs.").contains("not a dict"));
        assert!(err(b"\x80\x02}K\x01NsK\x01Ns.").contains("duplicate"));
        assert!(err(b"\x80\x02}]Ns.").contains("unhashable"));
        assert!(err(b"\x80\x02N\x88b.").contains("BUILD"));
        assert!(err(b"\x80\x02X\xff\xff\xff\xff.").contains("truncated"));
        assert!(err(b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff.").contains("truncated"));
        assert!(err(b"\x80\x02\x8c\x02\xff\xfe.").contains("UTF-8"));
    }

    #[test]
    fn cycles_depth_and_bombs_are_errors() {
        // l = []; l.append(l)
        assert!(err(b"\x80\x02]q\x00h\x00a.").contains("recursive"));
        // 10000 nested lists
        let mut p = vec![0x80, 2];
        p.extend(std::iter::repeat_n(b']', 10_000));
        p.extend(std::iter::repeat_n(b'a', 9_999));
        p.push(b'.');
        assert!(err(&p).contains("nested deeper"));
        // billion laughs: each level a tuple of the previous one 16 times, 60 levels
        let mut p = vec![0x80, 2, 0x8c, 3, b'a', b'b', b'c', b'q', 0, b'0'];
        for level in 0..60u8 {
            p.push(b'(');
            p.extend(std::iter::repeat_n([b'h', level], 16).flatten());
            p.extend([b't', b'q', level + 1]);
            p.extend([b'0']);
        }
        p.extend([b'h', 60, b'.']);
        let e = err(&p);
        assert!(e.contains("size limit"), "{e}");
    }

    #[test]
    fn every_prefix_of_a_pickle_is_an_error_not_a_panic() {
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend(s("key"));
        p.extend([b']', b'(', b'K', 1, b'G']);
        p.extend(1.5f64.to_be_bytes());
        p.extend([b'e', b'u', b'.']);
        assert!(unpickle(&p).is_ok());
        for n in 0..p.len() {
            assert!(unpickle(&p[..n]).is_err(), "prefix {n}");
        }
        // and random mutations never panic
        let mut seed = 0x2545f4914f6cdd1du64;
        for _ in 0..20_000 {
            let mut q = p.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed % q.len() as u64) as usize;
                q[i] = (seed >> 32) as u8;
            }
            let _ = unpickle(&q);
        }
    }
}
