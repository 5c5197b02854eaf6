"""A procedurally generated IQA dataset: clean scenes, distortions, MS-SSIM labels."""
