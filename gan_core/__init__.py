"""GAN Studio's engine: config, data, models, losses, trainer, checkpoints, sampling, store and worker.

Never imports streamlit: the dashboard depends on this package, not the other way round.
"""
