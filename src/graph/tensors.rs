//! Conversions between `.npy` arrays and tract tensors.

use tract_onnx::prelude::*;

use super::GraphError;
use crate::npy::{NpyArray, NpyData};

/// Converts `.npy` data to a tensor; `context` names it in errors.
pub fn npy_to_tensor(array: NpyArray, context: &str) -> Result<Tensor, GraphError> {
    let (shape, data) = array.into_parts();
    let tensor = match data {
        NpyData::F32(v) => Tensor::from_shape(&shape, &v),
        NpyData::I64(v) => Tensor::from_shape(&shape, &v),
        NpyData::I32(v) => Tensor::from_shape(&shape, &v),
        NpyData::U8(v) => Tensor::from_shape(&shape, &v),
    };
    tensor.map_err(|e| GraphError::Tensor {
        context: context.to_string(),
        problem: format!("{e:#}"),
    })
}

/// Converts a tensor of `f32`, `i64`, `i32` or `u8` to `.npy` data;
/// `context` names it in errors.
pub fn tensor_to_npy(tensor: &Tensor, context: &str) -> Result<NpyArray, GraphError> {
    let err = |problem: String| GraphError::Tensor {
        context: context.to_string(),
        problem,
    };
    let tract = |e: TractError| err(format!("{e:#}"));
    let plain = tensor.try_as_plain_ram().map_err(tract)?;
    let data = match tensor.datum_type() {
        DatumType::F32 => NpyData::F32(plain.as_slice::<f32>().map_err(tract)?.to_vec()),
        DatumType::I64 => NpyData::I64(plain.as_slice::<i64>().map_err(tract)?.to_vec()),
        DatumType::I32 => NpyData::I32(plain.as_slice::<i32>().map_err(tract)?.to_vec()),
        DatumType::U8 => NpyData::U8(plain.as_slice::<u8>().map_err(tract)?.to_vec()),
        other => {
            return Err(err(format!(
                "{other:?} tensors have no .npy form here (f32, i64, i32, u8)"
            )))
        }
    };
    NpyArray::new(tensor.shape().to_vec(), data).map_err(|e| err(e.kind.to_string()))
}
