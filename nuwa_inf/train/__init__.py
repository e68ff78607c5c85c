"""nuwa_inf.train"""
