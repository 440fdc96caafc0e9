/*
 * Segments the frames of a Y4M clip through the C API and writes each mask
 * as a PGM file: what firmware in C does with sammix.
 *
 *   segment_clip BUNDLE_DIR CLIP.y4m OUT_DIR [MAX_FRAMES]
 *
 * OUT_DIR/NNNNNN.pgm: the mask of frame NNNNNN (0 background, 255 target);
 * one line a frame on stdout: index, outcome, presence, mask area.
 * The clip's luma plane is the frame (Cmono, 4:2:0 and 4:4:4 clips); each
 * frame is copied into a buffer with a padded stride, as a capture driver's
 * buffers often are, to show the stride argument at work.
 *
 * Build (x86-64):  cc -O2 -Iinclude examples/c/segment_clip.c \
 *                     target/release/libsammix_c.a -lpthread -ldl -lm -Wl,-z,noexecstack -o segment_clip
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sammix.h"

#define STRIDE_PADDING 32

static const char *outcome_name(SammixOutcome o) {
    switch (o) {
    case SAMMIX_OUTCOME_ABSENT: return "absent";
    case SAMMIX_OUTCOME_NO_PROMPT: return "no_prompt";
    case SAMMIX_OUTCOME_SEGMENTED: return "segmented";
    case SAMMIX_OUTCOME_INVALID: return "invalid";
    }
    return "?";
}

/* Reads one '\n'-terminated line (at most cap - 1 bytes kept). 0 at the end of the file. */
static int read_line(FILE *f, char *buf, size_t cap) {
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF && c != '\n') {
        if (n + 1 < cap) buf[n++] = (char)c;
    }
    buf[n] = 0;
    return !(c == EOF && n == 0);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BUNDLE_DIR CLIP.y4m OUT_DIR [MAX_FRAMES]\n", argv[0]);
        return 2;
    }
    long max_frames = argc > 4 ? strtol(argv[4], NULL, 10) : -1;
    char error[512];
    SammixPipeline *handle = NULL;
    SammixStatus status = sammix_open(argv[1], &handle, error, sizeof error);
    if (status != SAMMIX_STATUS_OK) {
        fprintf(stderr, "sammix_open: %s\n", error);
        return 2;
    }
    fprintf(stderr, "sammix %s: bundle %s\n", sammix_version(), argv[1]);

    FILE *clip = fopen(argv[2], "rb");
    if (!clip) {
        fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
        sammix_close(handle);
        return 2;
    }
    char line[256];
    unsigned width = 0, height = 0;
    int chroma = 0; /* bytes of chroma after the luma plane, per 4 luma pixels: 0 mono, 2 4:2:0, 8 4:4:4 */
    if (!read_line(clip, line, sizeof line) || strncmp(line, "YUV4MPEG2 ", 10) != 0) {
        fprintf(stderr, "%s: not a Y4M clip (expected a YUV4MPEG2 header)\n", argv[2]);
        fclose(clip);
        sammix_close(handle);
        return 2;
    }
    chroma = 2; /* Y4M's default is 4:2:0 */
    for (char *tok = strtok(line + 10, " "); tok; tok = strtok(NULL, " ")) {
        if (tok[0] == 'W') width = (unsigned)strtoul(tok + 1, NULL, 10);
        if (tok[0] == 'H') height = (unsigned)strtoul(tok + 1, NULL, 10);
        if (tok[0] == 'C') {
            if (strcmp(tok, "Cmono") == 0) chroma = 0;
            else if (strncmp(tok, "C444", 4) == 0) chroma = 8;
            else if (strncmp(tok, "C420", 4) == 0) chroma = 2;
            else {
                fprintf(stderr, "%s: colour space %s: expected mono, 4:2:0 or 4:4:4\n", argv[2], tok);
                fclose(clip);
                sammix_close(handle);
                return 2;
            }
        }
    }
    if (width == 0 || height == 0 || width > 8192 || height > 8192) {
        fprintf(stderr, "%s: frame size %ux%u: expected 1 to 8192 each way\n", argv[2], width, height);
        fclose(clip);
        sammix_close(handle);
        return 2;
    }
    size_t luma = (size_t)width * height;
    size_t chroma_bytes = chroma == 0 ? 0
                          : chroma == 8 ? 2 * luma
                                        : 2 * (size_t)((width + 1) / 2) * ((height + 1) / 2);
    size_t stride = width + STRIDE_PADDING;
    uint8_t *plane = malloc(luma);
    uint8_t *pixels = calloc(stride * height, 1);
    uint8_t *mask = malloc(luma);
    if (!plane || !pixels || !mask) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }

    int rc = 0;
    long index = 0;
    while ((max_frames < 0 || index < max_frames) && read_line(clip, line, sizeof line)) {
        if (strncmp(line, "FRAME", 5) != 0) {
            fprintf(stderr, "%s: frame %ld: expected a FRAME header\n", argv[2], index);
            rc = 2;
            break;
        }
        if (fread(plane, 1, luma, clip) != luma || fseek(clip, (long)chroma_bytes, SEEK_CUR) != 0) {
            fprintf(stderr, "%s: frame %ld is truncated\n", argv[2], index);
            rc = 2;
            break;
        }
        for (unsigned y = 0; y < height; y++) memcpy(pixels + y * stride, plane + (size_t)y * width, width);
        SammixResult result;
        status = sammix_process(handle, pixels, width, height, (uint32_t)stride, SAMMIX_FORMAT_GRAY8,
                                (uint64_t)index, mask, luma, &result);
        if (status != SAMMIX_STATUS_OK) {
            fprintf(stderr, "frame %ld: %s\n", index, sammix_error(handle));
            rc = 2;
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%06ld.pgm", argv[3], index);
        FILE *out = fopen(path, "wb");
        if (!out || fprintf(out, "P5\n%u %u\n255\n", width, height) < 0 || fwrite(mask, 1, luma, out) != luma) {
            fprintf(stderr, "%s: cannot write: %s\n", path, strerror(errno));
            if (out) fclose(out);
            rc = 2;
            break;
        }
        fclose(out);
        printf("%06ld %s presence %.4f area %llu%s\n", index, outcome_name(result.outcome), result.presence,
               (unsigned long long)result.mask_area, result.review ? " review" : "");
        index++;
    }
    free(plane);
    free(pixels);
    free(mask);
    fclose(clip);
    sammix_close(handle);
    return rc;
}
