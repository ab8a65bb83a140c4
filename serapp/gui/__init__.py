"""The Qt desktop app. Everything it shows is computed by Qt-free modules of serapp."""
