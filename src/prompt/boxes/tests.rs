//! The box rules on small hand-made inputs.

use super::*;

/// Labels of a `size`² 0/1 mask given as rows of `.` and `#`.
fn labelled(rows: &[&str]) -> (usize, Vec<u32>, Vec<usize>) {
    let size = rows.len();
    let mask: Vec<bool> = rows
        .iter()
        .flat_map(|r| r.bytes().map(|b| b == b'#'))
        .collect();
    assert_eq!(mask.len(), size * size);
    let mut labels = vec![0; size * size];
    let (mut sizes, mut stack) = (Vec::new(), Vec::new());
    label_components(size, |i| mask[i], &mut labels, &mut sizes, &mut stack);
    (size, labels, sizes)
}

#[test]
fn components_are_numbered_in_raster_order_and_8_connected() {
    let (_, labels, sizes) = labelled(&[
        "#..#", //
        ".#..", //
        "...#", //
        "##.#",
    ]);
    // The diagonal pair is one component; (0, 3) alone; the right column
    // pair; the bottom-left pair.
    assert_eq!(sizes, vec![0, 2, 1, 2, 2]);
    assert_eq!(labels, vec![1, 0, 0, 2, 0, 1, 0, 0, 0, 0, 0, 3, 4, 4, 0, 3]);
}

#[test]
fn short_label_buffers_label_nothing() {
    let mut labels = vec![7; 3];
    let (mut sizes, mut stack) = (Vec::new(), Vec::new());
    label_components(2, |_| true, &mut labels, &mut sizes, &mut stack);
    assert_eq!(sizes, vec![0]);
    assert_eq!(labels, vec![0; 3]);
}

#[test]
fn largest_first_ties_in_label_order() {
    // Labels 1..=6 with sizes 3, 5, 3, 1, 5, 4.
    let sizes = [0, 3, 5, 3, 1, 5, 4];
    let top = |min, max| {
        let (l, n) = largest_components(&sizes, min, max);
        l[..n].to_vec()
    };
    assert_eq!(top(1, 4), vec![2, 5, 6, 1]);
    assert_eq!(
        top(1, 1),
        vec![2],
        "the single-box rule: first of the largest"
    );
    assert_eq!(top(1, 2), vec![2, 5]);
    assert_eq!(top(4, 4), vec![2, 5, 6]);
    assert_eq!(top(6, 4), Vec::<u32>::new());
    assert_eq!(top(1, 0), Vec::<u32>::new());
    // More than MAX_BOXES asked: MAX_BOXES given.
    assert_eq!(top(1, 9).len(), MAX_BOXES);
    // Ascending sizes: each new one goes first.
    let (l, n) = largest_components(&[0, 1, 2, 3, 4, 5], 1, 3);
    assert_eq!(l[..n], [5, 4, 3]);
}

#[test]
fn one_box_per_component_grown_and_clamped() {
    let (s, labels, sizes) = labelled(&[
        "##......", //
        "##......", //
        "........", //
        "....###.", //
        "....###.", //
        "........", //
        ".......#", //
        "........",
    ]);
    let boxes = component_boxes(&labels, &sizes, s, 1, 4, 0.0);
    assert_eq!(
        boxes.as_slice(),
        &[
            [4.0, 3.0, 6.0, 4.0],
            [0.0, 0.0, 1.0, 1.0],
            [7.0, 6.0, 7.0, 6.0]
        ]
    );
    assert_eq!(boxes.first(), Some([4.0, 3.0, 6.0, 4.0]));
    let boxes = component_boxes(&labels, &sizes, s, 2, 2, 1.5);
    assert_eq!(
        boxes.as_slice(),
        &[[2.5, 1.5, 7.0, 5.5], [0.0, 0.0, 2.5, 2.5]]
    );
    assert!(component_boxes(&labels, &sizes, s, 7, 4, 0.0).is_empty());
}

#[test]
fn margin_and_growth_match_the_single_box_rule() {
    assert_eq!(margin_px(0.03, 256), (0.03f64 as f32 as f64 * 256.0) as f32);
    assert_eq!(margin_px(0.0, 256), 0.0);
    assert_eq!(
        grow_box([10.0, 0.0, 250.0, 100.0], 7.68, 256),
        [10.0 - 7.68, 0.0, 255.0, 100.0 + 7.68]
    );
}

#[test]
fn boxes_hold_at_most_max_boxes() {
    let mut b = Boxes::new();
    assert!(b.is_empty() && b.first().is_none());
    for i in 0..MAX_BOXES {
        assert!(b.push([i as f32; 4]));
    }
    assert!(!b.push([9.0; 4]));
    assert_eq!(b.len(), MAX_BOXES);
    b.clear();
    assert!(b.is_empty());
}

#[test]
fn low_res_box_scales_bounds_to_the_input() {
    // 4×4 logits for a 16² input: scale 4.
    let mut l = [-1.0f32; 16];
    l[4 + 1] = 2.0; // (x 1, y 1)
    l[2 * 4 + 2] = 0.5; // (x 2, y 2)
    assert_eq!(
        box_from_low_res(&l, 4, 0.0, 16, 0.0),
        Some([4.0, 4.0, 11.0, 11.0])
    );
    // Strictly above the threshold.
    assert_eq!(
        box_from_low_res(&l, 4, 0.5, 16, 0.0),
        Some([4.0, 4.0, 7.0, 7.0])
    );
    // Grown and clamped like the CAM box.
    assert_eq!(
        box_from_low_res(&l, 4, 0.0, 16, 5.0),
        Some([0.0, 0.0, 15.0, 15.0])
    );
    // Same size as the input (E = 64 at S = 256): scale 1.
    assert_eq!(
        box_from_low_res(&l, 4, 0.0, 4, 0.0),
        Some([1.0, 1.0, 2.0, 2.0])
    );
}

#[test]
fn low_res_box_of_nothing_is_none() {
    assert_eq!(box_from_low_res(&[-1.0; 16], 4, 0.0, 16, 0.0), None);
    assert_eq!(box_from_low_res(&[f32::NAN; 16], 4, 0.0, 16, 0.0), None);
    assert_eq!(box_from_low_res(&[], 0, 0.0, 16, 0.0), None);
    // Short input: the rows there are.
    assert_eq!(
        box_from_low_res(&[1.0; 5], 4, 0.0, 16, 0.0),
        Some([0.0, 0.0, 15.0, 3.0])
    );
}
