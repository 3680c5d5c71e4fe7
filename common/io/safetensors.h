#pragma once

// Everything safetensors in one include: the file reader, the checkpoint-directory reader
// and the writers. See each header for details.

#include "common/io/dtype.h"                   // IWYU pragma: export
#include "common/io/safetensors_checkpoint.h"  // IWYU pragma: export
#include "common/io/safetensors_file.h"        // IWYU pragma: export
#include "common/io/safetensors_writer.h"      // IWYU pragma: export
