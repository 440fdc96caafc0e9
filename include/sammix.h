/*
 * sammix: SAM-Mix segmentation for firmware in C and C++.
 *
 * Open a bundle once (sammix_open), process frames from your own buffers
 * (sammix_process: pixels in, mask and result out), close it (sammix_close).
 * This layer allocates nothing per frame once a handle has seen a frame of
 * the current size; the graph engine underneath (tract) still allocates.
 *
 * Threads: one thread at a time per handle (a handle may move between
 * threads); distinct handles are independent.
 * Errors: every call returns a SammixStatus; sammix_open writes its message
 * into your buffer, sammix_error(handle) gives the last message of a handle.
 * Link: libsammix_c.a (with -lpthread -ldl -lm -Wl,-z,noexecstack: tract's
 * assembly objects carry no .note.GNU-stack) or libsammix_c.so.
 */

#ifndef SAMMIX_H
#define SAMMIX_H

/* Made by cbindgen from capi/src/lib.rs: do not edit. Regenerate with
   cbindgen --config capi/cbindgen.toml --crate sammix-capi --output include/sammix.h */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// What a call did.
typedef enum SammixStatus {
  // Done.
  SAMMIX_STATUS_OK = 0,
  // An argument was wrong (a null pointer, a size, a stride, a buffer
  // too small): nothing was done; `sammix_error` says which.
  SAMMIX_STATUS_ARGUMENT = 1,
  // The bundle could not be opened or its graphs loaded.
  SAMMIX_STATUS_BUNDLE = 2,
  // The frame could not be processed (the handle stays usable).
  SAMMIX_STATUS_FRAME = 3,
  // A bug inside sammix (a panic, contained).
  SAMMIX_STATUS_INTERNAL = 4,
} SammixStatus;

// What the model said about the target in a frame.
typedef enum SammixOutcome {
  // The classifier said absent: empty mask.
  SAMMIX_OUTCOME_ABSENT = 0,
  // Present, but the CAM gave no prompt: empty mask.
  SAMMIX_OUTCOME_NO_PROMPT = 1,
  // Segmented.
  SAMMIX_OUTCOME_SEGMENTED = 2,
  // A graph gave NaN or Inf: the frame says nothing; empty mask.
  SAMMIX_OUTCOME_INVALID = 3,
} SammixOutcome;

// The layout of the caller's pixels. Either goes to any bundle: its
// `input.color` decides what the model takes (`gray`: the luma, an RGB8
// frame's BT.601 `0.299 R + 0.587 G + 0.114 B`, in every channel; `rgb`:
// R, G, B, a GRAY8 frame replicated). Pass RGB8 to an `rgb` bundle.
typedef enum SammixFormat {
  // One byte a pixel (luma).
  SAMMIX_FORMAT_GRAY8 = 0,
  // Three bytes a pixel, R G B.
  SAMMIX_FORMAT_RGB8 = 1,
} SammixFormat;

// An open bundle's pipeline (opaque to C).
typedef struct SammixPipeline SammixPipeline;

// One frame's result.
typedef struct SammixResult {
  // The sequence number given with the frame.
  uint64_t sequence;
  enum SammixOutcome outcome;
  // Presence probability (sigmoid of the classifier's logit).
  float presence;
  // 1 when `box_xyxy` holds the prompt box (frame pixels, inclusive).
  int32_t has_box;
  float box_xyxy[4];
  // The decoder's predicted IoU of the chosen mask; NaN when not
  // segmented.
  float iou_prediction;
  // Target pixels in the mask.
  uint64_t mask_area;
  // 1 when the bundle's confidence rules flag the frame for review.
  int32_t review;
  // Wall time of the frame in the pipeline, ms.
  double total_ms;
} SammixResult;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The library's version, a static NUL-terminated string.
const char *sammix_version(void);

// Opens the bundle in folder `bundle_dir` (checked: manifest, every
// sha256, the graph contract; a signature against the trusted keys
// compiled into this build's board profile) and loads its graphs with the
// native mask decoder. On success `*out` is the handle; on failure
// `*out` is NULL and `error` (if not NULL, `error_len` bytes) holds the
// message, naming the file and what was expected.
//
// # Safety
// `bundle_dir` is a NUL-terminated path; `out` points to writable storage
// for a pointer; `error` is NULL or points to `error_len` writable bytes.
enum SammixStatus sammix_open(const char *bundle_dir,
                              struct SammixPipeline **out,
                              char *error,
                              size_t error_len);

// Segments one frame. `pixels`: `height` rows of `stride` bytes, each
// row's first `width` pixels in `format` (a `SammixFormat` value). `mask`: `mask_len` bytes,
// at least `width × height`, receives the mask row by row without
// padding (0 background, 255 target). `result` receives the frame's
// result. `sequence` numbers the frame; it comes back in the result.
//
// On an error the handle stays usable; `sammix_error` gives the message.
//
// # Safety
// `handle` comes from `sammix_open` and is not closed; `pixels` points to
// `stride × height` readable bytes; `mask` to `mask_len` writable bytes;
// `result` to a writable `SammixResult`. None of them overlap.
enum SammixStatus sammix_process(struct SammixPipeline *handle,
                                 const uint8_t *pixels,
                                 uint32_t width,
                                 uint32_t height,
                                 uint32_t stride,
                                 uint32_t format,
                                 uint64_t sequence,
                                 uint8_t *mask,
                                 size_t mask_len,
                                 struct SammixResult *result);

// The message of the handle's last failed call (empty after a call that
// succeeded); valid until the next call on the handle. A static message
// for a NULL handle.
//
// # Safety
// `handle` is NULL or a live handle from `sammix_open`.
const char *sammix_error(const struct SammixPipeline *handle);

// Closes a handle (NULL is allowed and does nothing).
//
// # Safety
// `handle` is NULL or a live handle from `sammix_open`, not used again.
void sammix_close(struct SammixPipeline *handle);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* SAMMIX_H */
