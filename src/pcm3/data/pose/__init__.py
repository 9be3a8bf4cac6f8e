"""Video -> skeletons: frames read with the ffmpeg that ``imageio-ffmpeg`` ships, one pose
estimator per video (MediaPipe Pose by default, or any :class:`PoseEstimator`), and the
per-video skeleton sequence the ``video`` format reader stores. Needs ``pip install 'pcm3[video]'``
for the real reader and estimator; the interfaces themselves import nothing optional."""

from pcm3.data.pose.estimator import COORDS, FramePose, PoseEstimator, VideoPoseOptions

__all__ = ["COORDS", "FramePose", "PoseEstimator", "VideoPoseOptions"]
