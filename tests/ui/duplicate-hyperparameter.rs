bp::network! {
    struct Net {
        input x: [4];
        let h = leaky_relu(x, slope = 0.1, slope = 0.2);
        output h;
    }
}

fn main() {}
