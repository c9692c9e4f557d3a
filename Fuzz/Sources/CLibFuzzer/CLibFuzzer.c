// Only the declaration in include/CLibFuzzer.h is needed; a C target needs one source file.
#include "CLibFuzzer.h"
