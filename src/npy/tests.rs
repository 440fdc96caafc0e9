use super::header::{HEADER_ALIGN, MAGIC};
use super::*;

/// `np.save(f, np.arange(6, dtype='<f4').reshape(2, 3))` with numpy 2.4: the
/// header, byte for byte.
const NUMPY_F32_2X3_HEADER: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                                                          \n";

/// `np.save(f, np.array(3, dtype='<i8'))`: a 0-d array.
const NUMPY_I64_SCALAR_HEADER: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (), }                                                              \n";

/// Builds a file from a header dictionary and a body, with a given version.
fn file(major: u8, dict: &str, body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[major, 0]);
    let text = format!("{dict}\n");
    if major == 1 {
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(body);
    out
}

fn f32_body(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn kind(bytes: &[u8]) -> NpyErrorKind {
    match NpyArray::from_bytes(bytes) {
        Ok(a) => panic!("expected an error, parsed {a:?}"),
        Err(e) => e.kind,
    }
}

#[test]
fn writes_the_header_numpy_writes() {
    let a = NpyArray::from_vec(vec![2, 3], vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    let bytes = a.to_bytes();
    assert_eq!(&bytes[..NUMPY_F32_2X3_HEADER.len()], NUMPY_F32_2X3_HEADER);
    assert_eq!(bytes.len(), 128 + 24);

    let s = NpyArray::from_vec(vec![], vec![3i64]).unwrap();
    assert_eq!(&s.to_bytes()[..128], NUMPY_I64_SCALAR_HEADER);
}

#[test]
fn reads_numpy_bytes() {
    let mut bytes = NUMPY_F32_2X3_HEADER.to_vec();
    bytes.extend(f32_body(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    let a = NpyArray::from_bytes(&bytes).unwrap();
    assert_eq!(a.shape(), &[2, 3]);
    assert_eq!(a.dtype(), DType::F32);
    assert_eq!(
        a.into_vec::<f32>().unwrap(),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );

    let mut bytes = NUMPY_I64_SCALAR_HEADER.to_vec();
    bytes.extend(3i64.to_le_bytes());
    let a = NpyArray::from_bytes(&bytes).unwrap();
    assert_eq!(a.shape(), &[] as &[usize]);
    assert_eq!(a.into_vec::<i64>().unwrap(), vec![3]);
}

#[test]
fn round_trips_every_dtype_and_odd_shapes() {
    let arrays = [
        NpyArray::from_vec(vec![3], vec![1.5f32, -0.0, f32::INFINITY]).unwrap(),
        NpyArray::from_vec(vec![2, 1], vec![i64::MIN, i64::MAX]).unwrap(),
        NpyArray::from_vec(vec![1, 1, 2], vec![-7i32, 9]).unwrap(),
        NpyArray::from_vec(vec![4], vec![0u8, 1, 254, 255]).unwrap(),
        NpyArray::from_vec(vec![0], Vec::<f32>::new()).unwrap(),
        NpyArray::from_vec(vec![3, 0, 2], Vec::<u8>::new()).unwrap(),
        NpyArray::from_vec(vec![], vec![42i32]).unwrap(),
    ];
    for a in arrays {
        let bytes = a.to_bytes();
        let header_end = bytes.len() - a.data().len() * a.dtype().size();
        assert_eq!(header_end % HEADER_ALIGN, 0, "data of {a:?} is not aligned");
        assert_eq!(NpyArray::from_bytes(&bytes).unwrap(), a);
    }
    // NaN payloads survive (compare bits, NaN != NaN).
    let nan = f32::from_bits(0x7fc0_0123);
    let back = NpyArray::from_bytes(&NpyArray::from_vec(vec![1], vec![nan]).unwrap().to_bytes())
        .unwrap()
        .into_vec::<f32>()
        .unwrap();
    assert_eq!(back[0].to_bits(), nan.to_bits());
}

#[test]
fn reads_versions_2_and_3_and_lenient_dict_syntax() {
    let body = f32_body(&[1.0, 2.0]);
    for major in [2, 3] {
        let bytes = file(
            major,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            &body,
        );
        assert_eq!(NpyArray::from_bytes(&bytes).unwrap().shape(), &[2]);
    }
    // Other key order, double quotes, no trailing comma, Python 2 longs.
    let bytes = file(
        1,
        r#"{"shape": (1L, 2L), "fortran_order": False, "descr": "<f4"}"#,
        &body,
    );
    assert_eq!(NpyArray::from_bytes(&bytes).unwrap().shape(), &[1, 2]);
    // '<u1' for bytes, and Fortran order on a vector (same layout as C).
    let bytes = file(
        1,
        "{'descr': '<u1', 'fortran_order': True, 'shape': (1, 3), }",
        &[1, 2, 3],
    );
    assert_eq!(
        NpyArray::from_bytes(&bytes)
            .unwrap()
            .into_vec::<u8>()
            .unwrap(),
        vec![1, 2, 3]
    );
}

#[test]
fn refuses_bad_magic() {
    assert!(matches!(kind(b""), NpyErrorKind::BadMagic { found } if found.is_empty()));
    assert!(matches!(
        kind(b"PK\x03\x04 this is a zip"),
        NpyErrorKind::BadMagic { .. }
    ));
    assert!(matches!(kind(b"\x93NUMP"), NpyErrorKind::BadMagic { .. }));
}

#[test]
fn refuses_unknown_versions() {
    let mut bytes = file(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
        &[0; 4],
    );
    bytes[6] = 4;
    assert!(matches!(
        kind(&bytes),
        NpyErrorKind::UnsupportedVersion { major: 4, minor: 0 }
    ));
    bytes[6] = 1;
    bytes[7] = 1;
    assert!(matches!(
        kind(&bytes),
        NpyErrorKind::UnsupportedVersion { major: 1, minor: 1 }
    ));
}

#[test]
fn refuses_truncated_headers() {
    let bytes = file(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
        &[0; 4],
    );
    assert!(matches!(
        kind(&bytes[..7]),
        NpyErrorKind::TruncatedHeader {
            expected: 8,
            found: 7
        }
    ));
    assert!(matches!(
        kind(&bytes[..9]),
        NpyErrorKind::TruncatedHeader {
            expected: 10,
            found: 9
        }
    ));
    assert!(matches!(
        kind(&bytes[..20]),
        NpyErrorKind::TruncatedHeader { found: 20, .. }
    ));
    // A length field far beyond any sane header.
    let mut huge = bytes.clone();
    huge[6] = 2;
    huge.splice(8..10, [0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(kind(&huge), NpyErrorKind::BadHeader { .. }));
}

#[test]
fn refuses_malformed_dictionaries() {
    let cases = [
        "",
        "{",
        "[]",
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'shape': (2,)}",
        "{'fortran_order': False, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
        "{'descr': <f4, 'fortran_order': False, 'shape': (2,)}",
        "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing",
        "{'descr': ('<f4', 1), 'fortran_order': False, 'shape': (2,)}",
    ];
    for dict in cases {
        let bytes = file(1, dict, &f32_body(&[1.0, 2.0]));
        match kind(&bytes) {
            NpyErrorKind::BadHeader { reason, .. } => assert!(!reason.is_empty()),
            other => panic!("{dict:?}: expected BadHeader, got {other:?}"),
        }
    }
    let mut latin1 = file(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
        &[],
    );
    latin1[12] = 0xe9;
    assert!(matches!(kind(&latin1), NpyErrorKind::BadHeader { .. }));
}

#[test]
fn widens_half_precision_to_f32_exactly() {
    // 0, 1, -2, 65504 (largest), 2^-24 (smallest subnormal), 0.333251953125 (nearest to 1/3), +inf
    let bits: [u16; 7] = [0x0000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x7c00];
    let body: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
    let dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (7,), }";
    let a = NpyArray::from_bytes(&file(1, dict, &body)).unwrap();
    assert_eq!(a.dtype(), DType::F32);
    let v = a.into_vec::<f32>().unwrap();
    let want = [
        0.0,
        1.0,
        -2.0,
        65504.0,
        2f32.powi(-24),
        0.333_251_95,
        f32::INFINITY,
    ];
    assert_eq!(v, want);
    // a half-precision body one element short is refused as truncated, not misread
    assert!(matches!(
        kind(&file(1, dict, &body[..12])),
        NpyErrorKind::TruncatedData { .. }
    ));
}

#[test]
fn refuses_unsupported_dtypes_and_fortran_order() {
    for descr in ["<f8", ">f4", ">f2", "|b1", "<c8", "|O", "<U5", ">i8", "f4"] {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
        match kind(&file(1, &dict, &[0; 8])) {
            NpyErrorKind::UnsupportedDtype { descr: d } => assert_eq!(d, descr),
            other => panic!("{descr}: expected UnsupportedDtype, got {other:?}"),
        }
    }
    let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }";
    assert!(matches!(
        kind(&file(1, dict, &[0; 16])),
        NpyErrorKind::FortranOrder
    ));
}

#[test]
fn refuses_truncated_and_trailing_data() {
    let dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
    let full = file(1, dict, &[0; 24]);
    let short = &full[..full.len() - 1];
    assert!(matches!(
        kind(short),
        NpyErrorKind::TruncatedData {
            expected: 24,
            found: 23,
            dtype: DType::I32,
            ..
        }
    ));
    let mut long = full.clone();
    long.push(0);
    assert!(matches!(
        kind(&long),
        NpyErrorKind::TrailingData { extra: 1, .. }
    ));
}

#[test]
fn refuses_shapes_that_overflow_before_allocating() {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, 4), }}",
        usize::MAX / 2
    );
    assert!(matches!(
        kind(&file(1, &dict, &[0; 4])),
        NpyErrorKind::ShapeOverflow { .. }
    ));
    // The element count fits, the byte count does not.
    let dict = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}",
        usize::MAX / 4
    );
    assert!(matches!(
        kind(&file(1, &dict, &[0; 4])),
        NpyErrorKind::ShapeOverflow { .. }
    ));
    // Plausible shape, absent data: an error, not an allocation of gigabytes.
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }";
    assert!(matches!(
        kind(&file(1, dict, &[0; 4])),
        NpyErrorKind::TruncatedData { .. }
    ));
}

#[test]
fn no_prefix_or_corruption_of_a_valid_file_panics() {
    let a = NpyArray::from_vec(vec![2, 2], vec![1i64, 2, 3, 4]).unwrap();
    let bytes = a.to_bytes();
    for end in 0..bytes.len() {
        assert!(
            NpyArray::from_bytes(&bytes[..end]).is_err(),
            "prefix of {end} bytes parsed"
        );
    }
    for i in 0..128 {
        for v in [0u8, b' ', b'(', b')', b'\'', b',', b'9', 0xff] {
            let mut corrupt = bytes.clone();
            corrupt[i] = v;
            let _ = NpyArray::from_bytes(&corrupt);
        }
    }
}

#[test]
fn checks_element_counts_types_and_shapes() {
    let err = NpyArray::from_vec(vec![2, 2], vec![1.0f32; 3]).unwrap_err();
    assert!(matches!(
        err.kind,
        NpyErrorKind::LengthMismatch {
            expected: 4,
            found: 3,
            ..
        }
    ));
    let err = NpyArray::from_vec(vec![1; MAX_RANK + 1], vec![1u8]).unwrap_err();
    assert!(matches!(err.kind, NpyErrorKind::RankTooLarge { rank: 65 }));
    let deep = NpyArray::from_vec(vec![1; MAX_RANK], vec![1u8]).unwrap();
    assert_eq!(NpyArray::from_bytes(&deep.to_bytes()).unwrap(), deep);
    let dims = vec!["1"; MAX_RANK + 1].join(", ");
    let dict = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({dims}), }}");
    assert!(matches!(
        kind(&file(1, &dict, &[0])),
        NpyErrorKind::RankTooLarge { .. }
    ));
    let err = NpyArray::from_vec(vec![usize::MAX, 2], vec![1u8]).unwrap_err();
    assert!(matches!(err.kind, NpyErrorKind::ShapeOverflow { .. }));

    let a = NpyArray::from_vec(vec![2], vec![1i32, 2]).unwrap();
    assert!(a.expect_shape(&[2]).is_ok());
    let err = a.expect_shape(&[1, 2]).unwrap_err();
    assert!(matches!(err.kind, NpyErrorKind::WrongShape { .. }));
    let err = a.into_vec::<f32>().unwrap_err();
    assert!(matches!(
        err.kind,
        NpyErrorKind::WrongDtype {
            expected: DType::F32,
            found: DType::I32
        }
    ));
}

#[test]
fn errors_name_the_file_and_what_was_expected() {
    let dir = std::env::temp_dir().join(format!("sammix-npy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let path = dir.join("embeddings.npy");
    std::fs::write(
        &path,
        file(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        ),
    )
    .unwrap();
    let msg = NpyArray::read(&path).unwrap_err().to_string();
    assert!(msg.contains("embeddings.npy"), "{msg}");
    assert!(msg.contains("<f8") && msg.contains("<f4"), "{msg}");

    let missing = dir.join("missing.npy");
    let err = NpyArray::read(&missing).unwrap_err();
    assert!(matches!(err.kind, NpyErrorKind::Io(_)));
    assert!(err.to_string().contains("missing.npy"));

    let path = dir.join("labels.npy");
    NpyArray::from_vec(vec![1, 2], vec![2i64, 3])
        .unwrap()
        .write(&path)
        .unwrap();
    let msg = read_typed::<f32>(&path).unwrap_err().to_string();
    assert!(
        msg.contains("labels.npy") && msg.contains("expected dtype <f4, found <i8"),
        "{msg}"
    );
    assert_eq!(read_typed::<i64>(&path).unwrap(), (vec![1, 2], vec![2, 3]));

    std::fs::remove_dir_all(&dir).unwrap();
}
