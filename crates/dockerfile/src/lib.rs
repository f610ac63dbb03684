//! Dockerfile analysis: a parser that follows Docker's own syntax, a lint for layers and
//! caches, and a fixer that merges layers without changing what the image contains.
