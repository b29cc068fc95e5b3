//! The lexer (logos): source text → tokens with byte spans, plus comments.
// Implemented in the front-end work (issue 2).
