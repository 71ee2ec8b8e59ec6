"""Tensors: ndarray codec, `.pbuf` model snapshots and compression pipelines."""
