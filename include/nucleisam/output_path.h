// Output names derived from untrusted input (image and slide file names, manifest lines, model
// metadata) must never leave the output folder. Every place that composes such a path goes
// through output_path_inside.
#pragma once

#include <string>

namespace nucleisam {

// A file name safe to create inside any folder: '/', '\\', NUL and the other control characters
// (below 0x20, and 0x7f) become '_'; "", "." and ".." become "_"; a name longer than
// limits::kMaxOutputNameBytes bytes is cut there (at a UTF-8 character boundary). Everything else
// (spaces, accents, brackets) is kept, so ordinary names give the outputs they always did.
// Pure; never throws.
std::string safe_file_name(const std::string& name);

// out_dir / derived_name, refusing (IoError naming both) any derived_name that is empty, contains
// '/', '\\' or NUL, is "." or "..", or is longer than 255 bytes (NAME_MAX): a name that
// would escape out_dir or cannot be created there. Names we build from inputs are first passed
// through safe_file_name, so this refusal is the last line of defence.
std::string output_path_inside(const std::string& out_dir, const std::string& derived_name);

// The name outputs of an input file are written under: safe_file_name of its stem
// ("in/case 1.svs" -> "case 1"). Two inputs with the same output stem would overwrite each other;
// callers that take several inputs check that.
std::string output_stem(const std::string& input_path);

// The output stem of a file found below `root` (a --recursive run), mirroring its folders:
// "root/case 1/x.png" -> "case 1/x", each folder name through safe_file_name; a file directly in
// root gets output_stem's. Throws IoError when input_path is not below root.
std::string output_stem_below(const std::string& root, const std::string& input_path);

// Where an output of `stem` goes: out_dir/<stem><suffix>, where a stem may name subfolders of
// out_dir ("case 1/x": '/'-separated, as output_stem_below gives). Each folder part and the file
// name pass output_path_inside's checks, so nothing leaves out_dir (a "..", an empty part, a
// leading '/' are refused). hidden: the file name starts with '.' ("case 1/.x.journal").
std::string stem_output_path(const std::string& out_dir, const std::string& stem, const std::string& suffix,
                             bool hidden = false);

}  // namespace nucleisam
