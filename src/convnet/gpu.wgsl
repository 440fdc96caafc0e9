// The steps of a `sammix::convnet` graph as compute shaders (the GPU
// backend, src/convnet/gpu.rs). Buffers are NHWC f32 (one image), as the
// CPU steps' buffers. One invocation computes one output value (a pixel for
// `layer_norm`, a channel for `global_max`); every entry point reads its
// index from the 2-D dispatch grid the host sizes (`index`).

struct Params {
    // input height, width, channels
    h: u32, w: u32, c: u32,
    // output height, width, channels
    oh: u32, ow: u32, oc: u32,
    // window: size, stride, padding, dilation
    k: u32, stride: u32, pad: u32, dil: u32,
    // offsets into `weights`: the weights, the bias (or gamma), beta
    w_off: u32, b_off: u32, g_off: u32,
    // 1: ReLU after the step
    relu: u32,
    // affine: scale and shift; layer norm: eps in `a`
    a: f32, b: f32,
    // values the step writes
    count: u32,
    pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;

fn index(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.y * groups.x * WG + id.x;
}

fn act(v: f32) -> f32 {
    if (p.relu == 1u) {
        return max(v, 0.0);
    }
    return v;
}

// Planar C×H×W (the graph's input) to NHWC: `c` channels, `h·w` pixels.
@compute @workgroup_size(64)
fn to_nhwc(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    let hw = p.h * p.w;
    let px = i / p.c;
    let ch = i % p.c;
    y[i] = x[ch * hw + px];
}

// NHWC to planar C×H×W (a graph output).
@compute @workgroup_size(64)
fn to_planar(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    let hw = p.h * p.w;
    let ch = i / hw;
    let px = i % hw;
    y[i] = x[px * p.c + ch];
}

// Convolution, groups 1: weights (k·k·c) × oc row-major, taps (ky, kx),
// input channels innermost; zero outside the input.
@compute @workgroup_size(64)
fn conv(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    let o = i % p.oc;
    let px = i / p.oc;
    let oy = px / p.ow;
    let ox = px % p.ow;
    var acc = weights[p.b_off + o];
    for (var ky = 0u; ky < p.k; ky = ky + 1u) {
        let iy = i32(oy * p.stride + ky * p.dil) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        for (var kx = 0u; kx < p.k; kx = kx + 1u) {
            let ix = i32(ox * p.stride + kx * p.dil) - i32(p.pad);
            if (ix < 0 || ix >= i32(p.w)) { continue; }
            let xb = (u32(iy) * p.w + u32(ix)) * p.c;
            let wb = p.w_off + (ky * p.k + kx) * p.c * p.oc + o;
            for (var ci = 0u; ci < p.c; ci = ci + 1u) {
                acc = acc + x[xb + ci] * weights[wb + ci * p.oc];
            }
        }
    }
    y[i] = act(acc);
}

// Depthwise convolution: taps k·k × c, tap-major.
@compute @workgroup_size(64)
fn depthwise(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    let ch = i % p.oc;
    let px = i / p.oc;
    let oy = px / p.ow;
    let ox = px % p.ow;
    var acc = weights[p.b_off + ch];
    for (var ky = 0u; ky < p.k; ky = ky + 1u) {
        let iy = i32(oy * p.stride + ky * p.dil) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        for (var kx = 0u; kx < p.k; kx = kx + 1u) {
            let ix = i32(ox * p.stride + kx * p.dil) - i32(p.pad);
            if (ix < 0 || ix >= i32(p.w)) { continue; }
            acc = acc + x[(u32(iy) * p.w + u32(ix)) * p.c + ch]
                * weights[p.w_off + (ky * p.k + kx) * p.c + ch];
        }
    }
    y[i] = act(acc);
}

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    y[i] = act(x[i] + x2[i]);
}

@compute @workgroup_size(64)
fn relu(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    y[i] = max(x[i], 0.0);
}

@compute @workgroup_size(64)
fn affine(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    y[i] = x[i] * p.a + p.b;
}

@compute @workgroup_size(64)
fn sigmoid(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    y[i] = 1.0 / (1.0 + exp(-x[i]));
}

// Nearest ×2.
@compute @workgroup_size(64)
fn upsample2(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let i = index(id, g);
    if (i >= p.count) { return; }
    let ch = i % p.oc;
    let px = i / p.oc;
    let oy = px / p.ow;
    let ox = px % p.ow;
    y[i] = x[((oy / 2u) * p.w + ox / 2u) * p.c + ch];
}

// One pixel's channels: (v − mean) / sqrt(var + eps) · gamma + beta.
@compute @workgroup_size(64)
fn layer_norm(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let px = index(id, g);
    if (px >= p.count) { return; }
    let base = px * p.c;
    var sum = 0.0;
    for (var ch = 0u; ch < p.c; ch = ch + 1u) {
        sum = sum + x[base + ch];
    }
    let mean = sum / f32(p.c);
    var sq = 0.0;
    for (var ch = 0u; ch < p.c; ch = ch + 1u) {
        let d = x[base + ch] - mean;
        sq = sq + d * d;
    }
    let inv = 1.0 / sqrt(sq / f32(p.c) + p.a);
    for (var ch = 0u; ch < p.c; ch = ch + 1u) {
        y[base + ch] = (x[base + ch] - mean) * inv * weights[p.b_off + ch] + weights[p.g_off + ch];
    }
}

// The largest value of one channel over the image; NaN propagates.
@compute @workgroup_size(64)
fn global_max(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) g: vec3<u32>) {
    let ch = index(id, g);
    if (ch >= p.count) { return; }
    var m = -3.4028235e38;
    for (var px = 0u; px < p.h * p.w; px = px + 1u) {
        let v = x[px * p.c + ch];
        if (v != v || v > m) { m = v; }
        if (m != m) { break; }
    }
    y[ch] = m;
}
