//! SAM's `TwoWayTransformer`: `depth` blocks of (token self-attention,
//! token → image cross-attention, MLP, image → token cross-attention), then
//! a final token → image attention. Tokens are `[T, C]`, the image
//! `[H·W, C]`. Projections run on the kernels' GEMMs (int8 where the graph
//! quantized them); the attentions are in `attention.rs`.

use crate::kernels::Kernels;

use super::attention::{attention, image_to_tokens_update, Attention, AttnScratch};
use super::linear::{relu, Linear};
use super::params::Norm;
use super::weights::Loader;
use super::DecoderError;

/// One `TwoWayAttentionBlock`.
#[derive(Debug, Clone)]
struct Block {
    self_attn: Attention,
    norm1: Norm,
    cross_attn_token_to_image: Attention,
    norm2: Norm,
    lin1: Linear,
    lin2: Linear,
    norm3: Norm,
    norm4: Norm,
    cross_attn_image_to_token: Attention,
    skip_first_layer_pe: bool,
}

/// The transformer's weights.
#[derive(Debug, Clone)]
pub(crate) struct TwoWayTransformer {
    c: usize,
    mlp_dim: usize,
    layers: Vec<Block>,
    final_attn_token_to_image: Attention,
    norm_final_attn: Norm,
}

/// Buffers of the transformer, for up to `t` tokens and `hw` pixels.
#[derive(Debug, Clone)]
pub(crate) struct TransformerScratch {
    attn: AttnScratch,
    tok_in: Vec<f32>,
    img_in: Vec<f32>,
    tok_tmp: Vec<f32>,
    img_tmp: Vec<f32>,
    out: Vec<f32>,
    hidden: Vec<f32>,
}

impl TwoWayTransformer {
    /// Loads `mask_decoder.transformer` for embedding dim `c`; the depth is
    /// the number of `layers.{i}` present.
    pub fn load(l: &Loader, c: usize) -> Result<TwoWayTransformer, DecoderError> {
        let p = "mask_decoder.transformer";
        let mut layers = Vec::new();
        while l
            .find(&format!("{p}.layers.{}.norm1.weight", layers.len()))
            .is_some()
        {
            let b = format!("{p}.layers.{}", layers.len());
            let lin1 = l.linear(&format!("{b}.mlp.lin1"), c, None)?;
            let mlp = lin1.n();
            layers.push(Block {
                self_attn: Attention::load(l, &format!("{b}.self_attn"), c)?,
                norm1: l.layer_norm(&format!("{b}.norm1"), c)?,
                cross_attn_token_to_image: Attention::load(
                    l,
                    &format!("{b}.cross_attn_token_to_image"),
                    c,
                )?,
                norm2: l.layer_norm(&format!("{b}.norm2"), c)?,
                lin1,
                lin2: l.linear(&format!("{b}.mlp.lin2"), mlp, Some(c))?,
                norm3: l.layer_norm(&format!("{b}.norm3"), c)?,
                norm4: l.layer_norm(&format!("{b}.norm4"), c)?,
                cross_attn_image_to_token: Attention::load(
                    l,
                    &format!("{b}.cross_attn_image_to_token"),
                    c,
                )?,
                skip_first_layer_pe: layers.is_empty(),
            });
        }
        if layers.is_empty() {
            return Err(l.missing(
                &format!("{p}.layers.0.norm1.weight"),
                format!("f32 [{c}]"),
                format!(
                    "initializers {:?}",
                    Loader::candidates(&format!("{p}.layers.0.norm1.weight"))
                ),
            ));
        }
        let mlp_dim = layers.iter().map(|b| b.lin1.n()).max().unwrap_or(0);
        Ok(TwoWayTransformer {
            c,
            mlp_dim,
            layers,
            final_attn_token_to_image: Attention::load(
                l,
                &format!("{p}.final_attn_token_to_image"),
                c,
            )?,
            norm_final_attn: l.layer_norm(&format!("{p}.norm_final_attn"), c)?,
        })
    }

    /// The number of blocks.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Whether any projection is int8.
    pub fn is_int8(&self) -> bool {
        self.layers.iter().any(|b| b.lin1.is_int8())
    }

    /// Buffers for up to `t` tokens and `hw` pixels.
    pub fn scratch(&self, t: usize, hw: usize) -> TransformerScratch {
        let c = self.c;
        let rows = t.max(hw);
        TransformerScratch {
            attn: AttnScratch::new(c, t, hw, self.mlp_dim),
            tok_in: vec![0.0; t * c],
            img_in: vec![0.0; hw * c],
            tok_tmp: vec![0.0; t * c],
            img_tmp: vec![0.0; hw * c],
            out: vec![0.0; rows * c],
            hidden: vec![0.0; t * self.mlp_dim],
        }
    }

    /// Runs the transformer: `queries[t × C]` (starting as `query_pe`, the
    /// tokens) and `keys[hw × C]` (the image plus dense prompt) are updated
    /// in place; `key_pe[hw × C]` is the dense positional encoding.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        kern: &Kernels,
        t: usize,
        hw: usize,
        queries: &mut [f32],
        keys: &mut [f32],
        query_pe: &[f32],
        key_pe: &[f32],
        s: &mut TransformerScratch,
    ) {
        let c = self.c;
        let (queries, keys) = (&mut queries[..t * c], &mut keys[..hw * c]);
        let (query_pe, key_pe) = (&query_pe[..t * c], &key_pe[..hw * c]);
        let TransformerScratch {
            attn,
            tok_in,
            img_in,
            tok_tmp,
            img_tmp,
            out,
            hidden,
        } = s;
        let (tok_in, tok_tmp) = (&mut tok_in[..t * c], &mut tok_tmp[..t * c]);
        let (img_in, img_tmp) = (&mut img_in[..hw * c], &mut img_tmp[..hw * c]);
        let norm = |x: &[f32], n: &Norm, dst: &mut [f32]| {
            kern.layer_norm(x, &n.gamma, &n.beta, n.eps, dst)
        };
        // img_in = keys + key_pe, kept so by each image → tokens update
        kern.add(keys, key_pe, img_in);
        for b in &self.layers {
            // self-attention of the tokens
            let o = &mut out[..t * c];
            if b.skip_first_layer_pe {
                attention(
                    kern,
                    &b.self_attn,
                    (t, &*queries),
                    (t, &*queries, &*queries),
                    o,
                    attn,
                );
                norm(o, &b.norm1, queries);
            } else {
                kern.add(queries, query_pe, tok_in);
                attention(
                    kern,
                    &b.self_attn,
                    (t, &*tok_in),
                    (t, &*tok_in, &*queries),
                    o,
                    attn,
                );
                kern.add(queries, o, tok_tmp);
                norm(tok_tmp, &b.norm1, queries);
            }
            // tokens → image
            kern.add(queries, query_pe, tok_in);
            attention(
                kern,
                &b.cross_attn_token_to_image,
                (t, &*tok_in),
                (hw, &*img_in, &*keys),
                o,
                attn,
            );
            kern.add(queries, o, tok_tmp);
            norm(tok_tmp, &b.norm2, queries);
            // MLP (ReLU)
            let h = &mut hidden[..t * b.lin1.n()];
            b.lin1.forward(kern, t, queries, &mut attn.q8, h);
            relu(h);
            b.lin2.forward(kern, t, h, &mut attn.q8, o);
            kern.add(queries, o, tok_tmp);
            norm(tok_tmp, &b.norm3, queries);
            // image → tokens (img_in = keys + key_pe still: keys unchanged),
            // then a block of rows at a time while it is in cache: keys =
            // norm4(keys + o) and img_in = keys + key_pe for the next
            // attention
            kern.add(queries, query_pe, tok_in);
            image_to_tokens_update(
                kern,
                &b.cross_attn_image_to_token,
                (hw, &mut *img_in),
                (t, &*tok_in, &*queries),
                out,
                attn,
                |rows, x, o| {
                    let k = &mut keys[rows.start * c..rows.end * c];
                    let tmp = &mut img_tmp[..k.len()];
                    kern.add(k, o, tmp);
                    norm(tmp, &b.norm4, k);
                    kern.add(k, &key_pe[rows.start * c..rows.end * c], x);
                },
            );
        }
        kern.add(queries, query_pe, tok_in);
        let o = &mut out[..t * c];
        attention(
            kern,
            &self.final_attn_token_to_image,
            (t, &*tok_in),
            (hw, &*img_in, &*keys),
            o,
            attn,
        );
        kern.add(queries, o, tok_tmp);
        norm(tok_tmp, &self.norm_final_attn, queries);
    }
}
