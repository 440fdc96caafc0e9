//! Reading and writing NumPy `.npy` files.
//!
//! Only what the runtime and its test vectors need: format versions 1.0, 2.0
//! and 3.0, C order (`fortran_order: False`; a Fortran-ordered array is
//! accepted only when at most one dimension exceeds 1, so that both layouts
//! coincide), little-endian element types `<f4`, `<i8`, `<i4` and `|u1` (see
//! [`DType`]), at most [`MAX_RANK`] dimensions. Half precision (`<f2`) is read
//! only: it is widened to f32 (exactly) into [`NpyData::F32`], so that
//! reference vectors can be stored at half the size. Everything else is refused
//! with an [`NpyError`] that names the file and says what was expected;
//! malformed input never panics.
//!
//! ```
//! use sammix::npy::{NpyArray, NpyData};
//!
//! let a = NpyArray::new(vec![2, 3], NpyData::F32(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]))?;
//! let bytes = a.to_bytes();
//! let b = NpyArray::from_bytes(&bytes)?;
//! assert_eq!(a, b);
//! assert_eq!(b.into_vec::<f32>()?.len(), 6);
//! # Ok::<(), sammix::npy::NpyError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

mod header;

/// The largest rank accepted (numpy 2's limit).
pub const MAX_RANK: usize = 64;

/// An element type this module reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float, little-endian (`<f4`).
    F32,
    /// 64-bit signed integer, little-endian (`<i8`).
    I64,
    /// 32-bit signed integer, little-endian (`<i4`).
    I32,
    /// Unsigned byte (`|u1`).
    U8,
    /// 16-bit IEEE float, little-endian (`<f2`): read only, widened to f32.
    F16,
}

impl DType {
    /// The numpy `descr` string written for this type.
    pub fn descr(self) -> &'static str {
        match self {
            DType::F32 => "<f4",
            DType::I64 => "<i8",
            DType::I32 => "<i4",
            DType::U8 => "|u1",
            DType::F16 => "<f2",
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
            DType::U8 => 1,
            DType::F16 => 2,
        }
    }

    /// Parses a numpy `descr`. Accepts the explicit little-endian forms and,
    /// for bytes, any byte-order mark.
    fn from_descr(descr: &str) -> Option<DType> {
        match descr {
            "<f4" => Some(DType::F32),
            "<i8" => Some(DType::I64),
            "<i4" => Some(DType::I32),
            "|u1" | "<u1" | "=u1" | ">u1" => Some(DType::U8),
            "<f2" => Some(DType::F16),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.descr())
    }
}

/// The supported types, as written in error messages.
const SUPPORTED: &str = "<f4, <f2, <i8, <i4 or |u1";

/// The elements of an array, in C order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4` elements.
    F32(Vec<f32>),
    /// `<i8` elements.
    I64(Vec<i64>),
    /// `<i4` elements.
    I32(Vec<i32>),
    /// `|u1` elements.
    U8(Vec<u8>),
}

impl NpyData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            NpyData::F32(_) => DType::F32,
            NpyData::I64(_) => DType::I64,
            NpyData::I32(_) => DType::I32,
            NpyData::U8(_) => DType::U8,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::F32(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::U8(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An element type that [`NpyArray::into_vec`] and [`NpyArray::from_vec`]
/// convert to and from. Implemented for `f32`, `i64`, `i32` and `u8`; sealed.
pub trait Element: Sized + sealed::Sealed {
    /// The matching numpy type.
    const DTYPE: DType;
    /// Takes the elements out of `data` when it holds this type.
    fn unwrap_data(data: NpyData) -> Result<Vec<Self>, NpyData>;
    /// Wraps elements of this type.
    fn wrap_data(values: Vec<Self>) -> NpyData;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i64 {}
    impl Sealed for i32 {}
    impl Sealed for u8 {}
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn unwrap_data(data: NpyData) -> Result<Vec<Self>, NpyData> {
                match data {
                    NpyData::$variant(v) => Ok(v),
                    other => Err(other),
                }
            }
            fn wrap_data(values: Vec<Self>) -> NpyData {
                NpyData::$variant(values)
            }
        }
    };
}
element!(f32, F32);
element!(i64, I64);
element!(i32, I32);
element!(u8, U8);

/// What went wrong, without the file name (see [`NpyError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpyErrorKind {
    /// The file could not be read or written.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not start with `\x93NUMPY`.
    #[error("not a .npy file: expected magic \\x93NUMPY, found {found:?}")]
    BadMagic {
        /// The first bytes of the file (up to 6).
        found: Vec<u8>,
    },
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor}: expected 1.0, 2.0 or 3.0")]
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The file ends before the header (or its length field) does.
    #[error("truncated header: expected {expected} bytes, the file has {found}")]
    TruncatedHeader {
        /// Bytes needed up to the end of the header.
        expected: usize,
        /// Bytes in the file.
        found: usize,
    },
    /// The header text is not the dictionary numpy writes.
    #[error("malformed header {header:?}: {reason}")]
    BadHeader {
        /// The header text (lossily decoded).
        header: String,
        /// What was expected.
        reason: String,
    },
    /// An element type this module does not read.
    #[error("unsupported dtype {descr:?}: expected {SUPPORTED} (C order, little-endian)")]
    UnsupportedDtype {
        /// The header's `descr`.
        descr: String,
    },
    /// The array is stored in Fortran (column-major) order.
    #[error(
        "fortran_order is True: only C-order arrays are supported (save np.ascontiguousarray(a))"
    )]
    FortranOrder,
    /// The shape has more than [`MAX_RANK`] dimensions.
    #[error("rank {rank} exceeds the maximum of {MAX_RANK}")]
    RankTooLarge {
        /// The number of dimensions.
        rank: usize,
    },
    /// The element count or byte size of the shape overflows `usize`.
    #[error("shape {shape:?} is too large")]
    ShapeOverflow {
        /// The shape.
        shape: Vec<usize>,
    },
    /// The file ends before the data does.
    #[error(
        "truncated data: shape {shape:?} of {dtype} needs {expected} bytes, the file has {found}"
    )]
    TruncatedData {
        /// The shape from the header.
        shape: Vec<usize>,
        /// The element type.
        dtype: DType,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes present after the header.
        found: usize,
    },
    /// There are bytes after the data.
    #[error("{extra} unexpected bytes after the data of shape {shape:?} of {dtype}")]
    TrailingData {
        /// The shape from the header.
        shape: Vec<usize>,
        /// The element type.
        dtype: DType,
        /// Bytes after the end of the data.
        extra: usize,
    },
    /// The number of elements does not match the shape.
    #[error("shape {shape:?} holds {expected} elements, got {found}")]
    LengthMismatch {
        /// The shape.
        shape: Vec<usize>,
        /// Elements the shape holds.
        expected: usize,
        /// Elements given.
        found: usize,
    },
    /// The array holds another element type than the caller asked for.
    #[error("expected dtype {expected}, found {found}")]
    WrongDtype {
        /// The type asked for.
        expected: DType,
        /// The type in the file.
        found: DType,
    },
    /// The array has another shape than the caller asked for.
    #[error("expected shape {expected:?}, found {found:?}")]
    WrongShape {
        /// The shape asked for.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
}

/// An error reading, writing or checking a `.npy` array, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", origin_display(.path))]
pub struct NpyError {
    /// The file, when the array came from or went to one.
    pub path: Option<PathBuf>,
    /// What went wrong.
    #[source]
    pub kind: NpyErrorKind,
}

fn origin_display(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "npy data".to_string(),
    }
}

impl NpyError {
    fn new(kind: NpyErrorKind) -> NpyError {
        NpyError { path: None, kind }
    }

    fn at(mut self, path: &Path) -> NpyError {
        self.path = Some(path.to_path_buf());
        self
    }
}

impl From<NpyErrorKind> for NpyError {
    fn from(kind: NpyErrorKind) -> NpyError {
        NpyError::new(kind)
    }
}

/// An n-dimensional array: shape and elements in C order.
///
/// The element count always equals the product of the shape (a 0-d array has
/// shape `[]` and one element).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    shape: Vec<usize>,
    data: NpyData,
}

impl NpyArray {
    /// Builds an array, checking that `data` has as many elements as `shape`.
    pub fn new(shape: Vec<usize>, data: NpyData) -> Result<NpyArray, NpyError> {
        let expected = element_count(&shape)?;
        if expected != data.len() {
            return Err(NpyErrorKind::LengthMismatch {
                shape,
                expected,
                found: data.len(),
            }
            .into());
        }
        Ok(NpyArray { shape, data })
    }

    /// Builds an array from a typed vector.
    pub fn from_vec<T: Element>(shape: Vec<usize>, values: Vec<T>) -> Result<NpyArray, NpyError> {
        NpyArray::new(shape, T::wrap_data(values))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The elements.
    pub fn data(&self) -> &NpyData {
        &self.data
    }

    /// Shape and elements.
    pub fn into_parts(self) -> (Vec<usize>, NpyData) {
        (self.shape, self.data)
    }

    /// The elements as a vector of `T`, or [`NpyErrorKind::WrongDtype`].
    pub fn into_vec<T: Element>(self) -> Result<Vec<T>, NpyError> {
        T::unwrap_data(self.data).map_err(|other| {
            NpyErrorKind::WrongDtype {
                expected: T::DTYPE,
                found: other.dtype(),
            }
            .into()
        })
    }

    /// Checks the shape, or fails with [`NpyErrorKind::WrongShape`].
    pub fn expect_shape(&self, expected: &[usize]) -> Result<(), NpyError> {
        if self.shape != expected {
            return Err(NpyErrorKind::WrongShape {
                expected: expected.to_vec(),
                found: self.shape.clone(),
            }
            .into());
        }
        Ok(())
    }

    /// Parses the contents of a `.npy` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<NpyArray, NpyError> {
        let (header, data_start) = header::split(bytes)?;
        let (dtype, shape) = header::parse(header)?;
        let count = element_count(&shape)?;
        let expected =
            count
                .checked_mul(dtype.size())
                .ok_or_else(|| NpyErrorKind::ShapeOverflow {
                    shape: shape.clone(),
                })?;
        let body = &bytes[data_start..];
        if body.len() < expected {
            return Err(NpyErrorKind::TruncatedData {
                shape,
                dtype,
                expected,
                found: body.len(),
            }
            .into());
        }
        if body.len() > expected {
            let extra = body.len() - expected;
            return Err(NpyErrorKind::TrailingData {
                shape,
                dtype,
                extra,
            }
            .into());
        }
        let data = match dtype {
            DType::F32 => NpyData::F32(decode(body, f32::from_le_bytes)),
            DType::I64 => NpyData::I64(decode(body, i64::from_le_bytes)),
            DType::I32 => NpyData::I32(decode(body, i32::from_le_bytes)),
            DType::U8 => NpyData::U8(body.to_vec()),
            DType::F16 => NpyData::F32(decode(body, |b: [u8; 2]| {
                half::f16::from_le_bytes(b).to_f32()
            })),
        };
        Ok(NpyArray { shape, data })
    }

    /// Serializes to the contents of a `.npy` file (format 1.0, the header
    /// `np.save` writes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = header::encode(self.dtype(), &self.shape);
        out.reserve(self.data.len() * self.dtype().size());
        match &self.data {
            NpyData::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            NpyData::I64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            NpyData::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            NpyData::U8(v) => out.extend_from_slice(v),
        }
        out
    }

    /// Reads a `.npy` file.
    pub fn read(path: impl AsRef<Path>) -> Result<NpyArray, NpyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| NpyError::new(e.into()).at(path))?;
        NpyArray::from_bytes(&bytes).map_err(|e| e.at(path))
    }

    /// Writes a `.npy` file.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), NpyError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes()).map_err(|e| NpyError::new(e.into()).at(path))
    }
}

/// Reads a `.npy` file holding elements of type `T`: shape and elements.
pub fn read_typed<T: Element>(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<T>), NpyError> {
    let path = path.as_ref();
    let array = NpyArray::read(path)?;
    let shape = array.shape.clone();
    let values = array.into_vec::<T>().map_err(|e| e.at(path))?;
    Ok((shape, values))
}

/// Product of the dimensions, checked.
fn element_count(shape: &[usize]) -> Result<usize, NpyError> {
    if shape.len() > MAX_RANK {
        return Err(NpyErrorKind::RankTooLarge { rank: shape.len() }.into());
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            NpyErrorKind::ShapeOverflow {
                shape: shape.to_vec(),
            }
            .into()
        })
}

/// Decodes little-endian elements of `N` bytes; `body.len()` is a multiple of `N`.
fn decode<T, const N: usize>(body: &[u8], from_le: fn([u8; N]) -> T) -> Vec<T> {
    body.chunks_exact(N)
        .map(|chunk| {
            let mut raw = [0u8; N];
            raw.copy_from_slice(chunk);
            from_le(raw)
        })
        .collect()
}

#[cfg(test)]
mod tests;
