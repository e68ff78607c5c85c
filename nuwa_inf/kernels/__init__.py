"""nuwa_inf.kernels"""
