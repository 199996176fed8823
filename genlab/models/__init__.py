"""Pure Flax (`flax.linen`) modules: encoders, decoders, generators, discriminators.

No losses and no optimizers live here (DESIGN.md): a method in `genlab/methods/` combines a
module with its objective. Each file holds one family's networks, the paper-sized variants
as `functools.partial`s of one module, and tiny variants for tests beside them.
"""
