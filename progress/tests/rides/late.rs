//! Late data: a stretch of fixes that arrives hours late gives, recomputed from a snapshot,
//! exactly what it would have given in time.
