"""Clips in and out: reading frame folders and video files, writing MP4, WebM, GIF, WebP and frame folders."""
