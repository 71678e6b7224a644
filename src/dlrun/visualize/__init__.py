"""`dlrun visualize`: learning curves, intermediate activations, filter patterns, Grad-CAM heatmaps.

One module per picture (`curves`, `activations`, `filters`, `gradcam`), plus what they share: `images`
(reading image files), `subjects` (the model to look at: a run's model or a keras.applications model),
`layers` (finding layers and capturing their outputs) and `output` (new output folders, atomic writes).
"""
